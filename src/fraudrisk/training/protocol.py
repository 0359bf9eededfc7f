"""The handbook's evaluation protocol (§3 of ``docs/handbook-benchmark.md``).

A recipe is retrained and assessed on the baseline split (train 2018-07-25 → 07-31, 7-day
delay, test 08-08 → 08-14 with known-card filtering) and on the 4 prequential test folds
(training starts 08-15, 08-08, 08-01, 07-25). The test set of a split is always the book's: a
recipe with a longer training window trains on more days that *end* where the book's 7-day
window ends, so every label it uses is older than the delay and its test rows are unchanged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fraudrisk.training import estimators as models
from fraudrisk.training.metrics import auc_roc, average_precision, card_precision_at_k
from fraudrisk.training.recipes import Recipe
from fraudrisk.training.splits import (
    BASELINE_TRAIN_START,
    DELTA_ASSESSMENT,
    DELTA_DELAY,
    DELTA_TRAIN,
    N_FOLDS,
    TEST_FOLDS_START,
    train_test_split_with_delay,
)

METRICS: tuple[str, ...] = ("auc_roc", "average_precision", "card_precision_at_100")
SCORE = "prediction"
Metrics = dict[str, float]


@dataclass(frozen=True)
class Split:
    """Training rows and filtered test rows of one split."""

    train: pd.DataFrame
    test: pd.DataFrame


def split_for_window(frame: pd.DataFrame, book_train_start: dt.date, window_days: int) -> Split:
    """The book's split starting ``book_train_start``, with a ``window_days`` training window.

    The test rows are the book's (7-day train, 7-day delay, 7 test days, known-card filtering);
    the training window ends where the book's 7-day window ends and starts ``window_days``
    before it.

    Args:
        frame: Frame of :func:`~fraudrisk.training.dataset.load_frame`.
        book_train_start: Training start of the book's 7-day window.
        window_days: Days of training (>= 1).

    Returns:
        The split.
    """
    book_train, test = train_test_split_with_delay(
        frame, book_train_start, DELTA_TRAIN, DELTA_DELAY, DELTA_ASSESSMENT
    )
    if window_days == DELTA_TRAIN:
        return Split(book_train, test)
    end = pd.Timestamp(book_train_start + dt.timedelta(days=DELTA_TRAIN))
    start = end - pd.Timedelta(days=window_days)
    in_window = (frame["tx_datetime"] >= start) & (frame["tx_datetime"] < end)
    return Split(frame[in_window].sort_values("transaction_id"), test)


def fold_starts(first: dt.date, n_folds: int = N_FOLDS) -> list[dt.date]:
    """Book training starts of the prequential folds, each shifted back 7 days."""
    return [first - dt.timedelta(days=i * DELTA_ASSESSMENT) for i in range(n_folds)]


def score_split(recipe: Recipe, split: Split) -> Metrics:
    """Train the recipe on a split's training rows and measure it on its test rows.

    Args:
        recipe: What to train.
        split: Training and test rows.

    Returns:
        ``{"auc_roc", "average_precision", "card_precision_at_100"}``, unrounded.
    """
    estimator = models.fit(recipe, split.train)
    scored = split.test[["tx_time_days", "customer_id", "tx_fraud"]].copy()
    scored[SCORE] = models.predict_scores(estimator, recipe, split.test)
    labels = scored["tx_fraud"].to_numpy()
    scores = scored[SCORE].to_numpy()
    return {
        "auc_roc": auc_roc(labels, scores),
        "average_precision": average_precision(labels, scores),
        "card_precision_at_100": card_precision_at_k(scored, 100, SCORE).mean,
    }


def summarise(per_fold: list[Metrics]) -> dict[str, Metrics]:
    """Mean and (population) standard deviation of each metric over folds."""
    return {
        "mean": {m: float(np.mean([f[m] for f in per_fold])) for m in METRICS},
        "std": {m: float(np.std([f[m] for f in per_fold])) for m in METRICS},
    }


def evaluate_folds(frame: pd.DataFrame, recipe: Recipe, first_start: dt.date) -> list[Metrics]:
    """The recipe's metrics on each prequential fold, the most recent fold first."""
    return [
        score_split(recipe, split_for_window(frame, start, recipe.window_days))
        for start in fold_starts(first_start)
    ]


def evaluate_recipe(frame: pd.DataFrame, recipe: Recipe) -> dict[str, Any]:
    """Retrain and assess a recipe under the handbook protocol.

    Args:
        frame: Frame of :func:`~fraudrisk.training.dataset.load_frame` (labels included).
        recipe: What to train.

    Returns:
        ``{"baseline": {metric: value}, "test_folds": {"mean": {...}, "std": {...}}}`` with the
        metrics ``auc_roc``, ``average_precision`` and ``card_precision_at_100``.
    """
    baseline = score_split(
        recipe, split_for_window(frame, BASELINE_TRAIN_START, recipe.window_days)
    )
    folds = evaluate_folds(frame, recipe, TEST_FOLDS_START)
    return {"baseline": dict(baseline), "test_folds": dict(summarise(folds))}
