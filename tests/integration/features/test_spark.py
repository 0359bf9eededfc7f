"""The Spark batch feature job against the plain-pandas reference, on a real local Spark."""

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fraudrisk.data.fast import FastConfig
from fraudrisk.data.simulate import fast_days, write_days
from fraudrisk.features.batch import build_features
from fraudrisk.features.chunks import HALO_DAYS, plan_chunks
from fraudrisk.features.definitions import FEATURE_NAMES, FEATURE_SET_VERSION
from fraudrisk.features.handbook_pandas import reference_features
from fraudrisk.features.quality import FeatureQualityError, raise_on_problems, table_problems
from fraudrisk.features.state import state_path
from fraudrisk.features.table import FeatureTable
from fraudrisk.io.lake import Lake

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    lake = Lake.open(str(tmp_path_factory.mktemp("lake")))
    lake.init(dt.date(2018, 4, 1))
    write_days(lake, fast_days(FastConfig(n_customers=300, n_terminals=600, nb_days=70, seed=9)))
    return lake


@pytest.fixture(scope="module")
def built(spark, lake, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("features"))
    # ~20k rows / 3k per chunk: chunks of a few days, shorter than the 37-day halo.
    result = build_features(spark, lake.storage.root, out, max_rows_per_chunk=3_000)
    return result, FeatureTable.open(out)


def test_spark_equals_the_pandas_reference(lake, built):
    result, table = built
    assert result.chunks > 3  # chunks of a few days: halo rows reach back across chunks
    spark_rows = table.read().to_pandas()
    reference = reference_features(lake.read(include_labels=True).to_pandas())
    assert len(spark_rows) == len(reference) == lake.count_rows()
    assert spark_rows.transaction_id.tolist() == reference.transaction_id.tolist()
    for name in FEATURE_NAMES:
        np.testing.assert_allclose(
            spark_rows[name].to_numpy(dtype=float),
            reference[name].to_numpy(dtype=float),
            rtol=1e-9,
            err_msg=name,
        )


def test_one_file_per_day_and_a_manifest(lake, built):
    result, table = built
    root = table.storage.root
    assert result.days == len(lake.days()) == 70
    import pathlib

    days = sorted(p.name for p in pathlib.Path(root).glob("dt=*"))
    assert len(days) == 70 and all(
        [f.name for f in (pathlib.Path(root) / d).iterdir()] == ["part-0.parquet"] for d in days
    )
    manifest = table.manifest()
    assert manifest["feature_set_version"] == FEATURE_SET_VERSION
    assert manifest["features"] == list(FEATURE_NAMES) and manifest["rows"] == lake.count_rows()


def test_entity_state_holds_the_horizon_events(lake, built):
    result, table = built
    rows = lake.read(include_labels=True).to_pandas()
    seconds = rows.tx_datetime.values.astype("datetime64[s]").astype(np.int64)
    as_of = int(seconds.max())
    state = pd.read_parquet(state_path(table.storage.root, "customer"))
    customer = int(rows.customer_id.iloc[-1])
    mine = rows[(rows.customer_id == customer) & (seconds > as_of - 30 * 86_400)]
    got = state[state.customer_id == customer].iloc[0]
    assert (
        list(got.event_ids)
        == mine.sort_values(["tx_datetime", "transaction_id"]).transaction_id.tolist()
    )
    terminals = pd.read_parquet(state_path(table.storage.root, "terminal"))
    labels = np.concatenate(terminals.event_labels.to_numpy())
    ages = as_of - np.concatenate(terminals.event_seconds.to_numpy())
    assert set(labels[ages < 7 * 86_400]) == {-1}  # labels younger than the delay are unknown
    assert set(labels[ages >= 7 * 86_400]) <= {0, 1}
    assert result.customers == len(state) and result.terminals == len(terminals)


def test_rebuild_on_a_shorter_lake_removes_stale_days(spark, tmp_path):
    lake = Lake.open(str(tmp_path / "lake"))
    lake.init(dt.date(2018, 4, 1))
    write_days(lake, fast_days(FastConfig(n_customers=50, n_terminals=100, nb_days=6)))
    out = str(tmp_path / "features")
    build_features(spark, lake.storage.root, out)
    lake.partitions.remove_days_except([dt.date(2018, 4, d) for d in (1, 2, 3)])
    result = build_features(spark, lake.storage.root, out)
    assert result.days == 3 and FeatureTable.open(out).partitions.days()[-1] == dt.date(2018, 4, 3)


def test_quality_checks_fail_loudly():
    good = pa.table(
        {
            "transaction_id": [1, 2],
            "tx_datetime": pa.array([0, 1], pa.timestamp("us")),
            "customer_id": [1, 1],
            "terminal_id": [1, 2],
            **{n: [1, 1] for n in FEATURE_NAMES},
        }
    )
    assert table_problems(good, "dt=x") == []
    bad = good.set_column(
        good.schema.get_field_index("terminal_id_risk_1day_window"),
        "terminal_id_risk_1day_window",
        pa.array([0.5, 1.5]),
    )
    bad = bad.set_column(0, "transaction_id", pa.array([7, 7]))
    bad = bad.set_column(
        bad.schema.get_field_index("tx_amount"), "tx_amount", pa.array([None, 2.0])
    )
    problems = table_problems(bad, "dt=x")
    assert any("risk_1day_window max 1.5" in p for p in problems)
    assert any("duplicate transaction ids" in p for p in problems)
    assert any("tx_amount has 1 nulls" in p for p in problems)
    with pytest.raises(FeatureQualityError, match="has 5 rows, the lake has 6"):
        raise_on_problems([], 5, 6)


def test_chunk_plan_balances_reads_and_bounds_memory():
    first, last = dt.date(2018, 4, 1), dt.date(2018, 9, 30)
    two = plan_chunks(first, last, 1_754_155, 2)
    assert [(c.first, c.last) for c in two] == [
        (first, dt.date(2018, 7, 19)),
        (dt.date(2018, 7, 20), last),
    ]
    assert two[1].read_from == two[1].first - dt.timedelta(days=HALO_DAYS) and two[1].is_last
    reads = [(c.last - c.read_from).days + 1 for c in two]
    assert abs(reads[0] - reads[1]) <= 1  # the first chunk has no halo, so more own days
    big = plan_chunks(first, last, 50_000_000, 2)
    assert len(big) > 8 and all(
        c.first == p.last + dt.timedelta(days=1) for p, c in itertools.pairwise(big)
    )
    assert big[-1].last == last and plan_chunks(first, first, 10, 8)[0].last == first
