"""Evaluation metrics of the handbook protocol (§3 of ``docs/handbook-benchmark.md``).

Two threshold-free transaction metrics (AUC ROC and Average Precision, from scikit-learn) and
the handbook's operational metric, Card Precision@k: the share of truly compromised cards among
the k cards an analyst team can check per day.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

#: Default name of the score column (the model's fraud probability or any monotone score).
DEFAULT_SCORE_COLUMN = "prediction"
#: Number of cards an analyst team checks per day in the handbook.
DEFAULT_TOP_K = 100

_DAY = "tx_time_days"
_CARD = "customer_id"
_LABEL = "tx_fraud"


@dataclass(frozen=True)
class CardPrecisionAtK:
    """Card Precision@k of a scored period, day by day.

    Attributes:
        k: Number of cards checked per day (the divisor of every daily value).
        days: The days of the period (``tx_time_days`` values present), ascending.
        per_day: CP@k of each day, aligned with ``days``.
        compromised_cards_per_day: Fraudulent cards of each day that were not detected on an
            earlier day (the most a perfect ranker could find, before capping at k).
        mean: CP@k of the period, the mean of ``per_day``.
    """

    k: int
    days: tuple[int, ...]
    per_day: tuple[float, ...]
    compromised_cards_per_day: tuple[int, ...]
    mean: float


def auc_roc(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve over all transactions.

    Args:
        y_true: Binary labels (1 = fraud).
        scores: Scores, higher = more suspicious.

    Returns:
        The AUC ROC (scikit-learn ``roc_auc_score``).
    """
    return float(roc_auc_score(y_true, scores))


def average_precision(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Average Precision (area under the precision-recall curve) over all transactions.

    Args:
        y_true: Binary labels (1 = fraud).
        scores: Scores, higher = more suspicious.

    Returns:
        The AP (scikit-learn ``average_precision_score``, step-wise, not interpolated).
    """
    return float(average_precision_score(y_true, scores))


def card_precision_at_k(
    scored: pd.DataFrame, k: int = DEFAULT_TOP_K, score_col: str = DEFAULT_SCORE_COLUMN
) -> CardPrecisionAtK:
    """Card Precision@k exactly as the handbook computes it.

    Day by day, in ascending ``tx_time_days`` order: the transactions of cards detected on an
    earlier day are dropped; the remaining transactions are grouped by card (``customer_id``)
    with the card's score = max transaction score and label = max ``tx_fraud``; the k cards with
    the highest scores are taken; CP_day = fraudulent cards among them / k (the divisor is k
    even on a day with fewer than k cards); the fraudulent ones join the detected set.

    Ties: cards are ordered by ``customer_id`` ascending, then sorted by score descending with
    a *stable* sort, so among equal scores the smaller ``customer_id`` ranks first. The book
    uses numpy's unstable quicksort, whose tie order is not reproducible across builds.

    Args:
        scored: Transactions with columns ``tx_time_days``, ``customer_id``, ``tx_fraud`` and
            ``score_col``; any index, any row order.
        k: Number of cards checked per day.
        score_col: Name of the score column.

    Returns:
        The daily values, the compromised cards per day and their mean.

    Raises:
        ValueError: If ``k`` < 1, a column is missing or ``scored`` has no rows.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    _require_columns(scored, (_DAY, _CARD, _LABEL, score_col))
    if scored.empty:
        raise ValueError("card_precision_at_k needs at least one transaction")
    # Grouping by (day, card) first and removing detected cards afterwards is the same as the
    # book's remove-then-group, and avoids one full scan of the frame per day.
    cards_by_day = scored.groupby([_DAY, _CARD], sort=True)[[score_col, _LABEL]].max()
    detected: set[Hashable] = set()
    days: list[int] = []
    per_day: list[float] = []
    compromised: list[int] = []
    for day, day_cards in cards_by_day.groupby(level=_DAY, sort=True):
        cards = day_cards.droplevel(_DAY)
        cards = cards[~cards.index.isin(list(detected))]
        top_frauds = _fraudulent_cards_in_top_k(cards, k, score_col)
        days.append(int(day))  # type: ignore[call-overload]
        per_day.append(len(top_frauds) / k)
        compromised.append(int((cards[_LABEL] == 1).sum()))
        detected.update(top_frauds)
    return CardPrecisionAtK(
        k=k,
        days=tuple(days),
        per_day=tuple(per_day),
        compromised_cards_per_day=tuple(compromised),
        mean=float(np.mean(per_day)),
    )


def performance_summary(
    scored: pd.DataFrame, score_col: str = DEFAULT_SCORE_COLUMN, k: int = DEFAULT_TOP_K
) -> dict[str, float]:
    """The handbook's three test metrics of a scored period, unrounded.

    Args:
        scored: Transactions with columns ``tx_time_days``, ``customer_id``, ``tx_fraud`` and
            ``score_col``.
        score_col: Name of the score column.
        k: Cards checked per day for Card Precision@k.

    Returns:
        ``{"auc_roc": ..., "average_precision": ..., "card_precision@<k>": ...}``.
    """
    _require_columns(scored, (_DAY, _CARD, _LABEL, score_col))
    labels = scored[_LABEL].to_numpy()
    scores = scored[score_col].to_numpy()
    return {
        "auc_roc": auc_roc(labels, scores),
        "average_precision": average_precision(labels, scores),
        f"card_precision@{k}": card_precision_at_k(scored, k=k, score_col=score_col).mean,
    }


def _fraudulent_cards_in_top_k(cards: pd.DataFrame, k: int, score_col: str) -> list[Hashable]:
    """Fraudulent cards among the k best-scored cards of one day.

    ``cards`` is indexed by ``customer_id`` in ascending order (groupby output), so the stable
    sort breaks score ties by ascending ``customer_id``.
    """
    ranked = cards.sort_values(score_col, ascending=False, kind="stable")
    top_k = ranked.head(k)
    return list(top_k.index[top_k[_LABEL] == 1])


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Raise a ValueError naming the columns of ``columns`` that ``frame`` lacks."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"missing columns: {missing}")


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability curve: scores in ``[lower, upper]``, their mean, the fraud rate."""

    lower: float
    upper: float
    count: int
    mean_score: float
    fraud_rate: float


def reliability_bins(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, bins: int = 10
) -> list[ReliabilityBin]:
    """The reliability curve over equal-count (quantile) bins of the scores.

    Fraud scores crowd near zero, so equal-width bins would put nearly every transaction in the
    first; quantile bins (as the training reliability plot uses) give each bin the same weight.
    Ties across a quantile edge stay together, so there may be fewer than ``bins`` bins.

    Raises:
        ValueError: If the arrays are empty or of different lengths.
    """
    labels = np.asarray(y_true, dtype=np.float64)
    risk = np.asarray(scores, dtype=np.float64)
    if labels.shape != risk.shape or not len(risk):
        raise ValueError("reliability needs as many labels as scores, and some")
    edges = np.unique(np.quantile(risk, np.linspace(0, 1, bins + 1)))
    index = np.clip(np.searchsorted(edges, risk, side="right") - 1, 0, max(len(edges) - 2, 0))
    found = []
    for number in np.unique(index):
        mine = index == number
        found.append(
            ReliabilityBin(
                lower=float(risk[mine].min()),
                upper=float(risk[mine].max()),
                count=int(mine.sum()),
                mean_score=float(risk[mine].mean()),
                fraud_rate=float(labels[mine].mean()),
            )
        )
    return found


def expected_calibration_error(curve: list[ReliabilityBin]) -> float:
    """ECE: the count-weighted mean gap between each bin's mean score and its fraud rate."""
    total = sum(b.count for b in curve)
    return sum(b.count * abs(b.fraud_rate - b.mean_score) for b in curve) / total
