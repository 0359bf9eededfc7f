"""Backtest and what-if of a decision policy on a labelled window: pure array computations.

A :class:`Window` holds the champion's calibrated risk of every labelled transaction of the
window (computed in batch), its label and amount, the columns the policies read, and the
reason codes of the rows a policy's thresholds flag. :func:`backtest` applies the candidate
(and the active policy, for comparison) with the vectorised engine and reports, as
:class:`~fraudrisk.policy.backtest_results.BacktestResult`:

- per rule: hits, hit rate, precision, recall, false-positive rate, overlap with the other
  rules, fraud amount among its hits, decisions it set;
- per threshold (review, then decline) across a grid, the other threshold and the rules held:
  alerts and reviews per day, precision, recall, fraud amount caught and the three costs; the
  cost-optimal point, and the cheapest one within the alert budget (reviews per day);
- the candidate beside the active policy, and the change, under the candidate's costs.

Reason codes as live: the scorer explains only the rows its thresholds flag
(``serving.reason_codes_for="flagged"``), so a policy sees the reasons of the rows whose risk
reaches its own review threshold and none elsewhere. The sweeps keep the rules' hits as the
candidate's own thresholds make them (a rule reading ``reasons`` is not re-evaluated with the
reasons another threshold would have produced); every other rule is exact at every point.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fraudrisk.policy.backtest_figures import (
    Bools,
    Floats,
    Window,
    costs_of,
    figures,
    row_weights,
    tally,
)
from fraudrisk.policy.backtest_results import BacktestResult, Figures, PolicyOutcome, RuleFigures
from fraudrisk.policy.backtest_sweeps import GRID_POINTS, sweep
from fraudrisk.policy.document import CheckedPolicy, Costs
from fraudrisk.policy.engine import BatchDecisions, PolicyEngine

__all__ = ["Window", "backtest", "change", "outcome", "overlap_counts", "rule_figures"]
#: Rows per block of the overlap matrix (bounds its float32 copy of the hits).
OVERLAP_BLOCK = 262_144
REASONS_FOR = "flagged: each policy sees the reasons of the rows its review threshold flags"


def outcome(
    policy: CheckedPolicy, decision: npt.NDArray[np.str_], weights: Floats, days: int, costs: Costs
) -> PolicyOutcome:
    """A policy's decisions on the window, summed up."""
    thresholds = policy.document.thresholds
    return PolicyOutcome(
        name=policy.document.name,
        source=policy.source,
        review=thresholds.review,
        decline=thresholds.decline,
        figures=figures(tally(decision, weights), days, costs),
    )


def change(candidate: Figures, active: Figures) -> dict[str, float | None]:
    """Candidate minus active, per figure (None where either is None)."""
    new, old = candidate.model_dump(), active.model_dump()
    return {k: None if new[k] is None or old[k] is None else new[k] - old[k] for k in new}


def overlap_counts(fired: Bools) -> npt.NDArray[np.int64]:
    """Rows hit by both rules, shape (rules, rules) (the diagonal: each rule's hits)."""
    rules = fired.shape[1]
    total = np.zeros((rules, rules), dtype=np.int64)
    for first in range(0, len(fired), OVERLAP_BLOCK):
        block = fired[first : first + OVERLAP_BLOCK].astype(np.float32)
        total += np.rint(block.T @ block).astype(np.int64)  # exact: sums ≤ the block's rows
    return total


def rule_figures(
    policy: CheckedPolicy, decided: BatchDecisions, window: Window
) -> list[RuleFigures]:
    """Per rule of ``policy``: its hits on the window and what they hold."""
    fired, n = decided.fired, len(window)
    frauds = int(window.fraud.sum())
    genuine = n - frauds
    both = overlap_counts(fired)
    shared = fired & (fired.sum(axis=1) >= 2)[:, None]
    found = []
    for j, rule in enumerate(policy.rules):
        hits = fired[:, j]
        count, hit_frauds = int(hits.sum()), int((hits & window.fraud).sum())
        others = {policy.rules[k].name: int(both[j, k]) for k in range(len(policy.rules)) if k != j}
        found.append(
            RuleFigures(
                name=rule.name,
                action=rule.spec.action,
                hits=count,
                hit_rate=count / n if n else 0.0,
                frauds=hit_frauds,
                precision=hit_frauds / count if count else None,
                recall=hit_frauds / frauds if frauds else None,
                false_positive_rate=(count - hit_frauds) / genuine if genuine else None,
                fraud_amount=float(window.amount[hits & window.fraud].sum()),
                decided=int((decided.decided_by == j).sum()),
                overlap_share=int(shared[:, j].sum()) / count if count else None,
                overlap=others,
            )
        )
    return found


def backtest(
    window: Window,
    candidate: CheckedPolicy,
    active: CheckedPolicy | None = None,
    points: int = GRID_POINTS,
) -> BacktestResult:
    """The candidate (and the active policy) on the window; see the module docstring.

    Raises:
        ValueError: If the window is empty.
        PolicyInputError: If a policy reads a column the window lacks.
    """
    if not len(window):
        raise ValueError(f"no labelled transaction in {window.start}..{window.end}")
    costs = costs_of(candidate)
    weights = row_weights(window, costs)
    decided = PolicyEngine(candidate).decide_batch(window.batch_for(candidate))
    mine = outcome(candidate, decided.decision, weights, window.days, costs)
    theirs = None
    if active is not None:
        decisions = PolicyEngine(active).decide_batch(window.batch_for(active)).decision
        theirs = outcome(active, decisions, weights, window.days, costs)
    document = candidate.document
    return BacktestResult(
        start=window.start,
        end=window.end,
        as_of=window.as_of,
        days=window.days,
        model=window.model,
        transactions=len(window),
        unlabelled=window.unlabelled,
        frauds=int(window.fraud.sum()),
        fraud_amount=float(window.amount[window.fraud].sum()),
        alert_budget=document.alert_budget,
        costs=costs.model_dump(),
        reasons_for=REASONS_FOR,
        candidate=mine,
        active=theirs,
        change=change(mine.figures, theirs.figures) if theirs else None,
        rules=rule_figures(candidate, decided, window),
        review_sweep=sweep("review", candidate, decided.fired, window, weights, points),
        decline_sweep=sweep("decline", candidate, decided.fired, window, weights, points),
    )
