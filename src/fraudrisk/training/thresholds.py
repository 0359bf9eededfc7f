"""Cost-based decision thresholds: approve, send to review, or decline.

The policy on a calibrated P(fraud) ``p``: ``p >= decline`` -> decline, ``p >= review`` ->
review, else approve. Costs of each outcome (see :class:`DecisionCosts`):

* an approved fraud loses its fraud loss (the amount, or a constant);
* a reviewed transaction costs an analyst's review; a reviewed fraud is caught with probability
  ``review_detection_rate`` (the rest is lost);
* a declined genuine transaction costs the customer friction ``decline_cost``; a declined fraud
  costs nothing.

:func:`choose_thresholds` picks both thresholds minimising the total cost on held-out data over a
grid of score quantiles, optionally under an alert budget (the share of transactions reviewed).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from fraudrisk.schemas import DecisionCosts, Thresholds
from fraudrisk.vocab import APPROVE, DECLINE, REVIEW


def choose_thresholds(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    costs: DecisionCosts | None = None,
    amounts: npt.ArrayLike | None = None,
) -> Thresholds:
    """Choose the review and decline thresholds of least total cost on held-out data.

    Args:
        y: Binary labels (1 = fraud) of held-out transactions.
        p: Calibrated P(fraud) of the same transactions.
        costs: The decision costs; defaults to :class:`DecisionCosts` ().
        amounts: Transaction amounts, the fraud loss of each fraud when ``costs.use_amount``.

    Returns:
        The thresholds with their cost, rates and recall on these transactions.

    Raises:
        ValueError: If the inputs are empty or of different lengths.
    """
    costs = costs or DecisionCosts()
    labels = np.asarray(y).astype(bool)
    scores = np.asarray(p, dtype=np.float64)
    if labels.size == 0 or labels.shape != scores.shape:
        raise ValueError("y and p must be non-empty and of the same length")
    loss = _fraud_losses(labels, costs, amounts)
    candidates = _candidate_thresholds(scores, costs.n_quantiles)
    n_above, genuine_above, loss_above = _counts_above(labels, scores, loss, candidates)
    # cost[i, j] with review threshold candidates[i] and decline threshold candidates[j].
    reviewed = n_above[:, None] - n_above[None, :]
    missed_in_review = (loss_above[:, None] - loss_above[None, :]) * (
        1.0 - costs.review_detection_rate
    )
    cost = (
        (loss.sum() - loss_above)[:, None]
        + costs.review_cost * reviewed
        + missed_in_review
        + costs.decline_cost * genuine_above[None, :]
    )
    feasible = candidates[:, None] <= candidates[None, :]
    if costs.max_review_rate is not None:
        feasible &= reviewed <= costs.max_review_rate * scores.size + 1e-9
    cost = np.where(feasible, cost, np.inf)
    i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return _summarise(labels, scores, float(candidates[i]), float(candidates[j]), loss, costs)


def decide(p: npt.ArrayLike, thresholds: Thresholds) -> npt.NDArray[np.str_]:
    """Apply the policy to scores.

    Args:
        p: Calibrated P(fraud).
        thresholds: The chosen thresholds.

    Returns:
        An array of ``"approve"``, ``"review"`` or ``"decline"``, one per score.
    """
    scores = np.asarray(p, dtype=np.float64)
    out = np.full(scores.shape, APPROVE, dtype="<U7")
    out[scores >= thresholds.review] = REVIEW
    out[scores >= thresholds.decline] = DECLINE
    return out


def _fraud_losses(
    labels: npt.NDArray[np.bool_], costs: DecisionCosts, amounts: npt.ArrayLike | None
) -> npt.NDArray[np.float64]:
    """Loss of each transaction if it is a missed fraud (0 for genuine ones)."""
    if amounts is not None and costs.use_amount:
        per_tx = np.asarray(amounts, dtype=np.float64)
        if per_tx.shape != labels.shape:
            raise ValueError("amounts must have one value per transaction")
    else:
        per_tx = np.full(labels.shape, costs.fraud_loss)
    return np.where(labels, per_tx, 0.0)


def _candidate_thresholds(
    scores: npt.NDArray[np.float64], n_quantiles: int
) -> npt.NDArray[np.float64]:
    """Ascending distinct score quantiles, 0 (flag all) and a value above every score (never).

    The "never" value is finite (just above max(1, max score)) so thresholds stay valid JSON.
    Ties in cost go to the lowest review threshold, then the lowest decline one (argmin order).
    """
    quantiles = np.quantile(scores, np.linspace(0.0, 1.0, n_quantiles + 1))
    never = math.nextafter(max(1.0, float(scores.max())), math.inf)
    return np.unique(np.concatenate([[0.0], quantiles, [never]]))


def _counts_above(
    labels: npt.NDArray[np.bool_],
    scores: npt.NDArray[np.float64],
    loss: npt.NDArray[np.float64],
    candidates: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per candidate: transactions, genuine ones and fraud loss with score >= the candidate.

    Suffix sums over the sorted scores: O(n log n) time and O(n) memory, whatever the grid.
    """
    order = np.argsort(scores, kind="stable")
    first_above = np.searchsorted(scores[order], candidates, side="left")

    def suffix(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        sums = np.concatenate([np.cumsum(values[::-1])[::-1], [0.0]])
        return sums[first_above]

    n_above = (scores.size - first_above).astype(np.float64)
    genuine_above = suffix((~labels[order]).astype(np.float64))
    return n_above, genuine_above, suffix(loss[order])


def _summarise(
    labels: npt.NDArray[np.bool_],
    scores: npt.NDArray[np.float64],
    review: float,
    decline: float,
    loss: npt.NDArray[np.float64],
    costs: DecisionCosts,
) -> Thresholds:
    """Evaluate one pair of thresholds on the data (the same arithmetic as the grid)."""
    declined = scores >= decline
    reviewed = (scores >= review) & ~declined
    approved = ~(declined | reviewed)
    total = (
        loss[approved].sum()
        + costs.review_cost * reviewed.sum()
        + loss[reviewed].sum() * (1.0 - costs.review_detection_rate)
        + costs.decline_cost * (declined & ~labels).sum()
    )
    n = scores.size
    n_fraud = int(labels.sum())
    return Thresholds(
        review=review,
        decline=decline,
        expected_cost=float(total) / n,
        total_cost=float(total),
        review_rate=float(reviewed.sum()) / n,
        decline_rate=float(declined.sum()) / n,
        recall_at_review=float((labels & ~approved).sum()) / n_fraud if n_fraud else 0.0,
        n_transactions=n,
        costs=costs,
    )
