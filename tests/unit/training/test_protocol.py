"""The handbook protocol: exact output keys, the book's test rows, no label younger than delay."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from tests.support.data import synthetic_frame

from fraudrisk.training.protocol import (
    METRICS,
    evaluate_recipe,
    fold_starts,
    split_for_window,
)
from fraudrisk.training.recipes import Recipe
from fraudrisk.training.splits import (
    BASELINE_TRAIN_START,
    DELTA_DELAY,
    TEST_FOLDS_START,
    train_test_split_with_delay,
)

FAST = Recipe(params={"n_estimators": 20, "max_depth": 3})


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(150, 160)


def test_output_has_exactly_the_protocol_keys(frame: pd.DataFrame) -> None:
    result = evaluate_recipe(frame, FAST)
    assert set(result) == {"baseline", "test_folds"}
    assert set(result["baseline"]) == set(METRICS)
    folds = result["test_folds"]
    assert isinstance(folds, dict)
    assert set(folds) == {"mean", "std"}
    for part in ("mean", "std"):
        assert set(folds[part]) == set(METRICS)
    json.dumps(result)  # plain floats
    for value in result["baseline"].values():
        assert isinstance(value, float)
        assert 0.0 <= value <= 1.0


def test_seven_day_window_is_the_books_split(frame: pd.DataFrame) -> None:
    split = split_for_window(frame, BASELINE_TRAIN_START, 7)
    train, test = train_test_split_with_delay(frame, BASELINE_TRAIN_START)
    pd.testing.assert_frame_equal(split.train, train)
    pd.testing.assert_frame_equal(split.test, test)


@pytest.mark.parametrize("window", [14, 28, 56])
def test_longer_windows_keep_the_test_rows_and_the_delay(frame: pd.DataFrame, window: int) -> None:
    for start in (BASELINE_TRAIN_START, *fold_starts(TEST_FOLDS_START)):
        book = split_for_window(frame, start, 7)
        split = split_for_window(frame, start, window)
        pd.testing.assert_frame_equal(split.test, book.test)
        first_test_day = pd.Timestamp(start + dt.timedelta(days=7 + DELTA_DELAY))
        assert split.test["tx_datetime"].min() >= first_test_day
        # Every label used is at least the delay older than the first test day.
        assert split.train["tx_datetime"].max() < first_test_day - pd.Timedelta(days=DELTA_DELAY)
        assert split.train["tx_datetime"].min() >= pd.Timestamp(start) - pd.Timedelta(
            days=window - 7
        )
        assert len(split.train) > len(book.train)
        assert book.train["transaction_id"].isin(split.train["transaction_id"]).all()


def test_fold_starts_shift_back_a_week() -> None:
    assert fold_starts(TEST_FOLDS_START) == [
        dt.date(2018, 8, 15),
        dt.date(2018, 8, 8),
        dt.date(2018, 8, 1),
        dt.date(2018, 7, 25),
    ]
