"""Train/test split with delay, known-card filtering and prequential folds, checked by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fraudrisk.training.splits import (
    BASELINE_TRAIN_START,
    TEST_FOLDS_START,
    VALIDATION_FOLDS_START,
    Fold,
    fold_windows,
    prequential_folds,
    train_test_split_with_delay,
)

EPOCH = dt.date(2018, 7, 1)
DAY_SECONDS = 86_400
# Day 2 of the frames: train days 2..8, delay days 9..15, test days 16..22 (s = 2).
START = EPOCH + dt.timedelta(days=2)


def transactions_frame(rows: list[tuple[int, int, int, int]]) -> pd.DataFrame:
    """Build a transaction frame from (customer_id, day, second_of_day, tx_fraud) rows.

    Transaction ids follow time order; the index is transaction_id + 1000 (labels differ from
    positions) and the rows are shuffled (the split must sort them back).
    """
    frame = pd.DataFrame(rows, columns=["customer_id", "tx_time_days", "second", "tx_fraud"])
    frame["tx_time_seconds"] = frame["tx_time_days"] * DAY_SECONDS + frame["second"]
    frame = frame.sort_values("tx_time_seconds", kind="stable").reset_index(drop=True)
    frame["transaction_id"] = np.arange(len(frame))
    frame["tx_datetime"] = pd.Timestamp(EPOCH) + pd.to_timedelta(frame["tx_time_seconds"], "s")
    frame["terminal_id"] = 0
    frame["tx_amount"] = 10.0
    frame["tx_fraud_scenario"] = frame["tx_fraud"]
    frame.index = pd.Index(frame["transaction_id"].to_numpy() + 1000)
    return frame.drop(columns="second").sample(frac=1.0, random_state=0)


HAND_ROWS = [
    # customer 1: fraud in train -> every test transaction dropped
    (1, 4, 100, 1),
    (1, 16, 100, 0),
    (1, 20, 100, 0),
    # customer 2: fraud on delay day 10 = s+7+k-1 for k=2 -> dropped from test day 18 on
    (2, 5, 100, 0),
    (2, 10, 100, 1),
    (2, 17, 100, 0),
    (2, 18, 100, 0),
    (2, 22, 100, 0),
    # customer 3: fraud on the last delay day 15, never visible during the test
    (3, 15, 100, 1),
    (3, 16, 100, 0),
    (3, 22, 100, 0),
    # customer 4: fraud before the training window, unknown to the book's filter
    (4, 1, 100, 1),
    (4, 16, 100, 0),
    # customer 5: fraud during the test itself: never used to filter
    (5, 17, 100, 1),
    (5, 21, 100, 0),
    # customer 6: legit, on the window boundaries
    (6, 1, DAY_SECONDS - 1, 0),
    (6, 2, 0, 0),
    (6, 8, DAY_SECONDS - 1, 0),
    (6, 9, 0, 0),
    (6, 15, 100, 0),
    (6, 16, 100, 0),
    (6, 23, 100, 0),
    # customer 7: fraud on day 14 = s+7+6-1 -> dropped from test day 22 only
    (7, 14, 100, 1),
    (7, 21, 100, 0),
    (7, 22, 100, 0),
    # customer 8: fraud in the last second of training
    (8, 8, DAY_SECONDS - 1, 1),
    (8, 16, 100, 0),
    # customer 9: fraud on the first delay day 9 -> visible to test day 17, not 16
    (9, 9, 100, 1),
    (9, 16, 100, 0),
    (9, 17, 100, 0),
]


def customer_days(frame: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(frame["customer_id"], frame["tx_time_days"], strict=True))


def test_training_window_is_start_inclusive_end_exclusive() -> None:
    train, _ = train_test_split_with_delay(transactions_frame(HAND_ROWS), START)
    assert customer_days(train) == {(1, 4), (2, 5), (6, 2), (6, 8), (8, 8)}
    assert train["tx_datetime"].min() == pd.Timestamp("2018-07-03 00:00:00")
    assert train["tx_datetime"].max() == pd.Timestamp("2018-07-09 23:59:59")


def test_test_days_drop_cards_known_after_the_delay() -> None:
    _, test = train_test_split_with_delay(transactions_frame(HAND_ROWS), START)
    expected = {(2, 17), (3, 16), (3, 22), (4, 16), (5, 17), (5, 21), (6, 16), (7, 21), (9, 16)}
    assert customer_days(test) == expected


def test_outputs_are_sorted_by_transaction_id_and_keep_index_labels() -> None:
    frame = transactions_frame(HAND_ROWS)
    train, test = train_test_split_with_delay(frame, START)
    for part in (train, test):
        assert part["transaction_id"].is_monotonic_increasing
        assert (part.index == part["transaction_id"] + 1000).all()


def test_shorter_deltas_move_the_test_window() -> None:
    _, test = train_test_split_with_delay(
        transactions_frame(HAND_ROWS), START, delta_train=7, delta_delay=0, delta_test=2
    )
    # Test days 9 and 10; known: train frauds + day 8 (for day 9) + day 9 (for day 10).
    # Customer 9's fraud on day 9 is a test transaction of that day itself, so it stays.
    assert customer_days(test) == {(2, 10), (6, 9), (9, 9)}


def test_empty_training_window_is_an_error() -> None:
    with pytest.raises(ValueError, match="no transaction"):
        train_test_split_with_delay(transactions_frame(HAND_ROWS), dt.date(2019, 1, 1))


def random_frame(seed: int, n_days: int = 50, n_customers: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for day in range(n_days):
        for customer in range(n_customers):
            for _ in range(rng.poisson(1.0)):
                second, fraud = int(rng.integers(DAY_SECONDS)), int(rng.random() < 0.03)
                rows.append((customer, day, second, fraud))
        rows.append((0, day, 0, 0))  # every day starts with a transaction at midnight
    return transactions_frame(rows)


def test_folds_shift_back_by_the_assessment_period() -> None:
    frame = random_frame(seed=1)
    start = EPOCH + dt.timedelta(days=30)
    folds = prequential_folds(frame, start, n_folds=3)
    assert len(folds) == 3
    for i, (train_index, test_index) in enumerate(folds):
        train, test = frame.loc[train_index], frame.loc[test_index]
        first_day = 30 - 7 * i
        assert set(train["tx_time_days"]) == set(range(first_day, first_day + 7))
        assert set(test["tx_time_days"]) <= set(range(first_day + 14, first_day + 21))
        expected_train, expected_test = train_test_split_with_delay(
            frame, start - dt.timedelta(days=7 * i)
        )
        assert list(train_index) == list(expected_train.index)
        assert list(test_index) == list(expected_test.index)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_no_test_card_had_a_fraud_visible_before_its_test_day(seed: int) -> None:
    frame = random_frame(seed)
    start = EPOCH + dt.timedelta(days=28)
    frauds = frame[frame["tx_fraud"] == 1]
    for i, (_, test_index) in enumerate(prequential_folds(frame, start, n_folds=4)):
        first_day = 28 - 7 * i
        test = frame.loc[test_index]
        for day in range(first_day + 14, first_day + 21):
            # Visible on `day`: frauds from the first training day to day - delay - 1.
            visible = frauds[frauds["tx_time_days"].between(first_day, day - 8)]
            known = set(visible["customer_id"])
            day_rows = frame[frame["tx_time_days"] == day]
            expected = day_rows[~day_rows["customer_id"].isin(list(known))]
            actual = test[test["tx_time_days"] == day]
            assert not set(actual["customer_id"]) & known
            assert set(actual.index) == set(expected.index)


def test_protocol_dates() -> None:
    assert dt.date(2018, 7, 25) == BASELINE_TRAIN_START
    baseline = fold_windows(BASELINE_TRAIN_START, n_folds=1)[0]
    assert baseline == Fold(
        dt.date(2018, 7, 25), dt.date(2018, 8, 1), dt.date(2018, 8, 8), dt.date(2018, 8, 15)
    )
    validation_starts = [fold.train_start for fold in fold_windows(VALIDATION_FOLDS_START)]
    assert validation_starts == [dt.date(2018, 7, d) for d in (11, 4)] + [
        dt.date(2018, 6, d) for d in (27, 20)
    ]
    test_starts = [fold.train_start for fold in fold_windows(TEST_FOLDS_START)]
    assert test_starts == [dt.date(2018, 8, d) for d in (15, 8, 1)] + [dt.date(2018, 7, 25)]
