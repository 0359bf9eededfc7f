"""Train/test splits with a label delay, and prequential folds, as in the handbook (§3).

A model trained on ``delta_train`` days is assessed ``delta_delay`` days later, because labels
are only known after about a week. In the test period, the transactions of cards already known
to be compromised are dropped: those with a fraud in the training period, plus, before each test
day, those with a fraud on the day that is ``delta_delay + 1`` days earlier. Frauds are known
from their day onward: a fraud on absolute day d is visible to the test day d + delta_delay + 1.

Protocol dates (the *training start* of each split; each fold is train, delay, assessment):

- :data:`BASELINE_TRAIN_START` 2018-07-25: train 07-25 → 07-31, delay 08-01 → 08-07, test
  08-08 → 08-14.
- :data:`VALIDATION_FOLDS_START` 2018-07-11 (= baseline start − delay − assessment): the
  validation folds start 07-11, 07-04, 06-27, 06-20 (each shifted back 7 days).
- :data:`TEST_FOLDS_START` 2018-08-15 (= baseline start + (folds − 1) × assessment): the test
  folds start 08-15, 08-08, 08-01, 07-25.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

#: Days of transactions a model is trained on.
DELTA_TRAIN = 7
#: Days between the end of training and the start of assessment (labels are not known yet).
DELTA_DELAY = 7
#: Days of transactions a model is assessed on.
DELTA_ASSESSMENT = 7
#: Number of prequential folds of model selection.
N_FOLDS = 4
#: Training start of the baseline split (test 2018-08-08 → 08-14).
BASELINE_TRAIN_START = dt.date(2018, 7, 25)
#: Training start of the first (most recent) validation fold; later folds shift back 7 days.
VALIDATION_FOLDS_START = BASELINE_TRAIN_START - dt.timedelta(days=DELTA_DELAY + DELTA_ASSESSMENT)
#: Training start of the first (most recent) test fold; later folds shift back 7 days.
TEST_FOLDS_START = BASELINE_TRAIN_START + dt.timedelta(days=(N_FOLDS - 1) * DELTA_ASSESSMENT)

IndexLabels = npt.NDArray[Any]


@dataclass(frozen=True)
class Fold:
    """Nominal calendar windows of one fold; every ``*_end`` is exclusive.

    The training window is selected on ``tx_datetime``; the test days on ``tx_time_days``
    relative to the first training day, which match these dates when days start at midnight.
    """

    train_start: dt.date
    train_end: dt.date
    test_start: dt.date
    test_end: dt.date


def train_test_split_with_delay(
    transactions: pd.DataFrame,
    start_training: dt.date,
    delta_train: int = DELTA_TRAIN,
    delta_delay: int = DELTA_DELAY,
    delta_test: int = DELTA_ASSESSMENT,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split transactions into a training and a test set, as the handbook's get_train_test_set.

    Train: ``tx_datetime`` in [start_training, start_training + delta_train days). With s the
    smallest ``tx_time_days`` of train, test day k (0 ≤ k < delta_test) is ``tx_time_days ==
    s + delta_train + delta_delay + k``, minus the transactions of known defrauded customers:
    those with a fraud in train, and, added just before test day k, those with a fraud on
    ``tx_time_days == s + delta_train + k − 1``.

    Args:
        transactions: Frame with columns ``transaction_id``, ``tx_datetime``, ``customer_id``,
            ``tx_time_days`` and ``tx_fraud``; its index labels are kept.
        start_training: First day of training (midnight).
        delta_train: Days of training.
        delta_delay: Days between training and test.
        delta_test: Days of test.

    Returns:
        (train, test), both sorted by ``transaction_id``.

    Raises:
        ValueError: If a delta is out of range or the training window has no transaction.
    """
    if delta_train < 1 or delta_test < 1 or delta_delay < 0:
        raise ValueError("delta_train and delta_test must be >= 1, delta_delay >= 0")
    train_start = pd.Timestamp(start_training)
    train_end = train_start + pd.Timedelta(days=delta_train)
    in_train = (transactions["tx_datetime"] >= train_start) & (
        transactions["tx_datetime"] < train_end
    )
    train = transactions[in_train]
    if train.empty:
        raise ValueError(f"no transaction in the training window starting {start_training}")
    first_day = int(train["tx_time_days"].min())
    known_defrauded = set(train.loc[train["tx_fraud"] == 1, "customer_id"])
    # Only days s+delta_train-1 .. end of test are read below; slice once, not per day.
    last_day = first_day + delta_train + delta_delay + delta_test - 1
    days = transactions["tx_time_days"]
    window = transactions[(days >= first_day + delta_train - 1) & (days <= last_day)]
    test_days: list[pd.DataFrame] = []
    for k in range(delta_test):
        newly_visible = window[
            (window["tx_time_days"] == first_day + delta_train + k - 1) & (window["tx_fraud"] == 1)
        ]
        known_defrauded.update(newly_visible["customer_id"])
        test_day = window[window["tx_time_days"] == first_day + delta_train + delta_delay + k]
        test_days.append(test_day[~test_day["customer_id"].isin(list(known_defrauded))])
    test = pd.concat(test_days)
    return train.sort_values("transaction_id"), test.sort_values("transaction_id")


def fold_windows(
    start_training: dt.date,
    n_folds: int = N_FOLDS,
    delta_train: int = DELTA_TRAIN,
    delta_delay: int = DELTA_DELAY,
    delta_assessment: int = DELTA_ASSESSMENT,
) -> list[Fold]:
    """Calendar windows of the prequential folds; fold i starts i × delta_assessment days earlier.

    Args:
        start_training: Training start of fold 0 (the most recent fold).
        n_folds: Number of folds.
        delta_train: Days of training.
        delta_delay: Days between training and assessment.
        delta_assessment: Days of assessment, also the shift between consecutive folds.

    Returns:
        One :class:`Fold` per fold, fold 0 first.
    """
    folds = []
    for fold in range(n_folds):
        train_start = start_training - dt.timedelta(days=fold * delta_assessment)
        train_end = train_start + dt.timedelta(days=delta_train)
        test_start = train_end + dt.timedelta(days=delta_delay)
        test_end = test_start + dt.timedelta(days=delta_assessment)
        folds.append(Fold(train_start, train_end, test_start, test_end))
    return folds


def prequential_folds(
    transactions: pd.DataFrame,
    start_training: dt.date,
    n_folds: int = N_FOLDS,
    delta_train: int = DELTA_TRAIN,
    delta_delay: int = DELTA_DELAY,
    delta_assessment: int = DELTA_ASSESSMENT,
) -> list[tuple[IndexLabels, IndexLabels]]:
    """Prequential folds as the handbook's prequentialSplit.

    Fold i is :func:`train_test_split_with_delay` with training start
    ``start_training − i × delta_assessment`` days.

    Args:
        transactions: Frame accepted by :func:`train_test_split_with_delay`.
        start_training: Training start of fold 0 (the most recent fold).
        n_folds: Number of folds.
        delta_train: Days of training.
        delta_delay: Days between training and assessment.
        delta_assessment: Days of assessment, also the shift between consecutive folds.

    Returns:
        One (train_index, test_index) pair per fold, fold 0 first: index *labels* of
        ``transactions`` in ``transaction_id`` order. They are positions (usable as a
        scikit-learn ``cv``) only when the frame has a default RangeIndex.
    """
    folds = []
    for window in fold_windows(start_training, n_folds, delta_train, delta_delay, delta_assessment):
        train, test = train_test_split_with_delay(
            transactions, window.train_start, delta_train, delta_delay, delta_assessment
        )
        folds.append((np.asarray(train.index), np.asarray(test.index)))
    return folds
