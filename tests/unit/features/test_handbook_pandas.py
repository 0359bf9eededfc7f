"""The feature kernel against the handbook-style pandas reference; point-in-time correctness."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fraudrisk.data.fast import FastConfig
from fraudrisk.data.simulate import fast_days, write_days
from fraudrisk.features.definitions import ALL_FEATURES, DAY, FEATURE_NAMES, LABEL_DELAY_DAYS
from fraudrisk.features.handbook_pandas import reference_features
from fraudrisk.features.kernel import all_features
from fraudrisk.io.lake import Lake

EPOCH = dt.date(2018, 4, 1)
INT_FEATURES = [f.name for f in ALL_FEATURES if f.kind == "int"]
FLOAT_FEATURES = [f.name for f in ALL_FEATURES if f.kind == "float"]


def seconds_of(tx_datetime: pd.Series) -> np.ndarray:
    return tx_datetime.to_numpy().astype("datetime64[s]").astype(np.int64)


def kernel_features(df: pd.DataFrame) -> pd.DataFrame:
    """The kernel's output as a frame in the reference's layout (sorted by transaction_id)."""
    out = all_features(
        df["customer_id"].to_numpy(),
        df["terminal_id"].to_numpy(),
        seconds_of(df["tx_datetime"]),
        df["transaction_id"].to_numpy(),
        df["tx_amount"].to_numpy(),
        df["tx_fraud"].to_numpy(),
    )
    frame = pd.DataFrame({"transaction_id": df["transaction_id"].to_numpy(), **out})
    return frame.sort_values("transaction_id").reset_index(drop=True)[
        ["transaction_id", *FEATURE_NAMES]
    ]


def assert_same_features(actual: pd.DataFrame, expected: pd.DataFrame, rtol: float = 1e-9) -> None:
    assert actual["transaction_id"].tolist() == expected["transaction_id"].tolist()
    for name in INT_FEATURES:
        np.testing.assert_array_equal(actual[name].to_numpy(), expected[name].to_numpy(), name)
    for name in FLOAT_FEATURES:
        np.testing.assert_allclose(
            actual[name].to_numpy(), expected[name].to_numpy(), rtol=rtol, atol=0, err_msg=name
        )


@pytest.fixture(scope="module")
def lake_frame(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """A small fast-generator lake (written and read back) as pandas, labels included."""
    lake = Lake.open(str(tmp_path_factory.mktemp("lake")))
    lake.init(EPOCH)
    write_days(lake, fast_days(FastConfig(300, 600, 60, seed=5)))
    return lake.read(include_labels=True).to_pandas()


# -- hand-made edge rows, on their own customers (9_00x) and terminals (9_10x) ------------------

T0 = pd.Timestamp("2018-04-20 10:00:00")
EDGE_ROWS = [
    # (transaction_id offset, seconds after T0, customer, terminal, amount, label)
    # same-second transactions of one customer, ids out of input order (1, 5, 3)
    (1, 0, 9_001, 9_101, 10.0, 0),
    (5, 0, 9_001, 9_101, 30.0, 0),
    (3, 0, 9_001, 9_102, 20.0, 1),
    # transactions exactly 1 hour, 1 day, 30 days old are out of the window; 1 second less, in
    (10, 0, 9_002, 9_103, 40.0, 0),
    (11, 3_599, 9_002, 9_104, 41.0, 0),
    (12, 3_600, 9_002, 9_104, 42.0, 0),
    (13, DAY - 1, 9_002, 9_104, 43.0, 0),
    (14, DAY, 9_002, 9_104, 44.0, 0),
    (15, 30 * DAY, 9_002, 9_103, 45.0, 0),
    # zero amounts: a first transaction of 0, then only zero history before a 12.5
    (20, -31 * DAY, 9_003, 9_105, 10.0, 0),
    (21, 0, 9_003, 9_105, 0.0, 0),
    (22, 10, 9_003, 9_105, 12.5, 0),
    (23, 20, 9_004, 9_105, 0.0, -1),
    # a customer with a 40-day gap, same terminal
    (30, -20 * DAY, 9_005, 9_106, 25.0, 0),
    (31, 20 * DAY, 9_005, 9_106, 26.0, 0),
    # the label delay at a terminal: a fraud at T0, read exactly 7 days later, not 1 s earlier
    (40, 0, 9_006, 9_107, 99.0, 1),
    (41, 7 * DAY - 1, 9_007, 9_107, 5.0, -1),
    (42, 7 * DAY, 9_008, 9_107, 5.0, -1),
    (43, 8 * DAY, 9_009, 9_107, 5.0, 0),
    # night ends at 07:00; 2018-04-22 is a Sunday
    (50, -3 * 3_600 - 1, 9_010, 9_108, 1.0, 0),
    (51, -3 * 3_600, 9_010, 9_108, 1.0, 0),
    (52, 2 * DAY + 14 * 3_600 - 1, 9_010, 9_108, 1.0, 0),
    (53, 2 * DAY + 14 * 3_600, 9_010, 9_108, 1.0, 0),
]


def with_edge_rows(lake: pd.DataFrame) -> pd.DataFrame:
    base = int(lake["transaction_id"].max()) + 1
    edge = pd.DataFrame(
        EDGE_ROWS, columns=["id", "offset", "customer_id", "terminal_id", "tx_amount", "tx_fraud"]
    )
    edge["transaction_id"] = base + edge.pop("id")
    edge["tx_datetime"] = (T0 + pd.to_timedelta(edge.pop("offset"), unit="s")).astype(
        lake["tx_datetime"].dtype
    )
    df = pd.concat([lake, edge.astype({"tx_fraud": lake["tx_fraud"].dtype})], ignore_index=True)
    last_week = df["tx_datetime"] > df["tx_datetime"].max() - pd.Timedelta(days=7)
    df.loc[last_week, "tx_fraud"] = -1  # recent labels are not known yet
    return df.sample(frac=1.0, random_state=0)  # inputs in any order


@pytest.fixture(scope="module")
def edge_frame(lake_frame: pd.DataFrame) -> pd.DataFrame:
    return with_edge_rows(lake_frame)


@pytest.fixture(scope="module")
def edge_reference(edge_frame: pd.DataFrame) -> pd.DataFrame:
    """The pandas reference on the edge rows (≈2 s), computed once for the two tests reading it."""
    return reference_features(edge_frame)


def test_kernel_equals_the_pandas_reference(
    edge_frame: pd.DataFrame, edge_reference: pd.DataFrame
) -> None:
    df, expected = edge_frame, edge_reference
    assert len(expected) == len(df) and expected["transaction_id"].is_monotonic_increasing
    assert list(expected.columns) == ["transaction_id", *FEATURE_NAMES]
    assert_same_features(kernel_features(df), expected)


def test_edge_rows_follow_the_definitions(
    lake_frame: pd.DataFrame, edge_frame: pd.DataFrame, edge_reference: pd.DataFrame
) -> None:
    base = int(lake_frame["transaction_id"].max()) + 1
    for features in (edge_reference, kernel_features(edge_frame)):
        row = features.set_index("transaction_id").loc
        # ties: ordered by id 1 < 3 < 5; the window of id 3 holds ids 1 and 3 only
        assert [row[base + i, "customer_id_nb_tx_1day_window"] for i in (1, 3, 5)] == [1, 2, 3]
        assert row[base + 3, "customer_id_avg_amount_1day_window"] == 15.0
        assert row[base + 5, "customer_id_new_terminal_30day_window"] == 0  # id 1 used 9_101
        assert row[base + 5, "customer_id_seconds_since_prev_tx"] == 0
        # boundaries: (t - n, t] excludes a transaction exactly n before
        assert row[base + 11, "customer_id_nb_tx_1hour_window"] == 2
        assert row[base + 12, "customer_id_nb_tx_1hour_window"] == 2
        assert row[base + 13, "customer_id_nb_tx_1day_window"] == 4
        assert row[base + 14, "customer_id_nb_tx_1day_window"] == 4
        assert row[base + 15, "customer_id_nb_tx_30day_window"] == 5
        assert row[base + 15, "customer_id_new_terminal_30day_window"] == 1
        assert row[base + 15, "customer_id_seconds_since_prev_tx"] == 30 * DAY - DAY
        # zero amounts
        assert row[base + 21, "customer_id_avg_amount_1day_window"] == 0.0
        assert row[base + 22, "customer_id_amount_ratio_30day_window"] == 1.0
        assert row[base + 23, "customer_id_avg_amount_30day_window"] == 0.0
        # 40-day gap: capped gap, fresh windows, novelty again
        assert row[base + 31, "customer_id_seconds_since_prev_tx"] == 30 * DAY
        assert row[base + 31, "customer_id_nb_tx_30day_window"] == 1
        assert row[base + 31, "customer_id_new_terminal_30day_window"] == 1
        # label delay: the fraud at T0 is read from T0 + 7 days on, over (t - 8d, t - 7d]
        assert row[base + 41, "terminal_id_nb_tx_1day_window"] == 0
        assert row[base + 42, "terminal_id_nb_tx_1day_window"] == 1
        assert row[base + 42, "terminal_id_risk_1day_window"] == 1.0
        assert row[base + 43, "terminal_id_nb_tx_1day_window"] == 0  # T0 is exactly 8 days back
        assert row[base + 43, "terminal_id_nb_tx_7day_window"] == 1
        assert row[base + 43, "terminal_id_risk_7day_window"] == 1.0
        assert row[base + 43, "terminal_id_risk_1day_window"] == 0.0
        # calendar
        assert row[base + 50, "tx_during_night"] == 1 and row[base + 51, "tx_during_night"] == 0
        assert row[base + 52, "tx_during_weekend"] == 1 and row[base + 53, "tx_during_weekend"] == 0


# -- point-in-time correctness -------------------------------------------------------------------


def alter_the_future(df: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    """Change everything after ``cut`` and every label younger than the delay at ``cut``."""
    rng = np.random.default_rng(0)
    df = df.copy()
    after = df["tx_datetime"] > cut
    df.loc[after, "tx_amount"] = df.loc[after, "tx_amount"] * rng.uniform(0.1, 9, after.sum())
    df.loc[after, "tx_amount"] = df.loc[after, "tx_amount"].round(2)
    df.loc[after, "terminal_id"] = rng.integers(0, 600, after.sum())
    young = df["tx_datetime"] > cut - pd.Timedelta(days=LABEL_DELAY_DAYS)
    df.loc[young, "tx_fraud"] = 1 - df.loc[young, "tx_fraud"]
    df = df.drop(df.index[after & (rng.uniform(size=len(df)) < 0.3)])
    new = df[df["tx_datetime"] > cut].sample(n=2_000, random_state=1, replace=True).copy()
    new["transaction_id"] = np.arange(len(new)) + int(df["transaction_id"].max()) + 1
    new["tx_datetime"] -= pd.to_timedelta(rng.integers(0, 600, len(new)), unit="s")
    new = new[new["tx_datetime"] > cut]
    return pd.concat([df, new], ignore_index=True)


def features_until(features: pd.DataFrame, df: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    past = df.loc[df["tx_datetime"] <= cut, "transaction_id"]
    return features[features["transaction_id"].isin(past)].reset_index(drop=True)


CUT = pd.Timestamp("2018-05-10 12:00:00")


def test_no_feature_reads_the_future_or_an_unknown_label(lake_frame: pd.DataFrame) -> None:
    altered = alter_the_future(lake_frame, CUT)
    assert (altered["tx_datetime"] <= CUT).sum() == (lake_frame["tx_datetime"] <= CUT).sum()
    before = features_until(kernel_features(lake_frame), lake_frame, CUT)
    after = features_until(kernel_features(altered), lake_frame, CUT)
    # Exact: money windows are integer sums, so other rows cannot move even the last bit.
    assert_same_features(after, before, rtol=0)
    pandas_before = features_until(reference_features(lake_frame), lake_frame, CUT)
    pandas_after = features_until(reference_features(altered), lake_frame, CUT)
    assert_same_features(pandas_after, pandas_before, rtol=0)


def test_the_point_in_time_test_catches_a_leaky_label_delay(lake_frame: pd.DataFrame) -> None:
    altered = alter_the_future(lake_frame, CUT)
    leaky_before = features_until(
        reference_features(lake_frame, label_delay_days=6), lake_frame, CUT
    )
    leaky_after = features_until(reference_features(altered, label_delay_days=6), lake_frame, CUT)
    with pytest.raises(AssertionError, match="terminal_id_risk"):
        assert_same_features(leaky_after, leaky_before)


# -- the published feature table ----------------------------------------------------------------

FINGERPRINT_COUNTS = {
    "tx_during_weekend": 508_385,
    "tx_during_night": 304_969,
    "customer_id_nb_tx_1day_window": 6_245_806,
    "customer_id_nb_tx_7day_window": 32_698_235,
    "customer_id_nb_tx_30day_window": 125_859_562,
    "terminal_id_nb_tx_1day_window": 1_683_536,
    "terminal_id_nb_tx_7day_window": 11_591_406,
    "terminal_id_nb_tx_30day_window": 46_326_926,
}
FINGERPRINT_RISKS = {
    "terminal_id_risk_1day_window": 8_880.3881,
    "terminal_id_risk_7day_window": 13_874.0121,
    "terminal_id_risk_30day_window": 13_223.9699,
}
FINGERPRINT_AVG_AMOUNTS = {
    "customer_id_avg_amount_1day_window": 94_070_787.9267,
    "customer_id_avg_amount_7day_window": 94_049_154.5533,
    "customer_id_avg_amount_30day_window": 94_027_586.9694,
}
TRANSACTION_1M = {
    "tx_during_weekend": 1,
    "tx_during_night": 0,
    "customer_id_nb_tx_1day_window": 5,
    "customer_id_nb_tx_7day_window": 22,
    "customer_id_nb_tx_30day_window": 92,
    "customer_id_avg_amount_1day_window": 69.276,
    "customer_id_avg_amount_7day_window": 74.706818,
    "customer_id_avg_amount_30day_window": 76.169022,
    "terminal_id_nb_tx_1day_window": 1,
    "terminal_id_nb_tx_7day_window": 8,
    "terminal_id_nb_tx_30day_window": 39,
    "terminal_id_risk_1day_window": 0,
    "terminal_id_risk_7day_window": 0,
    "terminal_id_risk_30day_window": 0,
}
