"""Threshold sweeps: the candidate's figures with one threshold moved across a grid.

The rules' hits and the other threshold are held. With them fixed, a row's decision as the
threshold ``t`` moves is a step: a set of rows (``switch``) goes to one decision (review, or
decline) once ``risk >= t`` and keeps its ``low`` decision below; the others never move. So
every point of the grid is a suffix sum over the switch rows sorted by risk: O(n log n) for
the whole grid.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from fraudrisk.policy.backtest_figures import (
    DECISIONS,
    Bools,
    Floats,
    Window,
    binned,
    costs_of,
    decision_codes,
    figures,
    fired_by_action,
)
from fraudrisk.policy.backtest_results import ThresholdPoint, ThresholdSweep
from fraudrisk.policy.document import ALLOW, DECLINE, FORCE_REVIEW, CheckedPolicy
from fraudrisk.scoring.decisions import decide
from fraudrisk.vocab import APPROVE, REVIEW
from fraudrisk.vocab import DECLINE as DECLINED

#: Log-spaced thresholds tried per sweep (before those outside the valid range are dropped).
GRID_POINTS = 120
GRID_RANGE = (1e-3, 0.999)


def ladder(
    risk: Floats, review: float, decline: float, allow: Bools, declined: Bools, forced: Bools
) -> npt.NDArray[np.str_]:
    """The engine's precedence on given rule hits (allow, decline rule, thresholds, force)."""
    out = decide(risk, review, decline)
    out[forced & (out != DECLINED)] = REVIEW
    out[declined] = DECLINED
    out[allow] = APPROVE
    return out


def threshold_grid(current: float, lower: float, upper: float, points: int) -> Floats:
    """Log-spaced thresholds strictly between ``lower`` and ``upper``, and ``current``."""
    grid = np.geomspace(*GRID_RANGE, points)
    grid = grid[(grid > lower) & (grid < upper)]
    return np.unique(np.append(grid, current))


def sweep_tallies(
    risk: Floats,
    low: npt.NDArray[np.str_],
    switch: Bools,
    high: str,
    weights: Floats,
    grid: Floats,
) -> Floats:
    """Tallies, shape (grid, 3, 5), when the ``switch`` rows with ``risk >= t`` go ``high``.

    The other rows keep ``low``. Each row falls in the bin of the grid points it reaches (the
    rows that never move in bin 0); a point's tally is the bins below it as they are, plus the
    bins above moved to ``high``: O(n), and a bin without rows sums to exactly 0.
    """
    reached = np.searchsorted(grid, risk, side="right")  # row reaches grid[k] iff k < reached
    bins = np.where(switch & ~np.isnan(risk), reached, 0).astype(np.int64)
    per_bin = binned(decision_codes(low), bins, weights, len(grid) + 1)
    out = np.cumsum(per_bin, axis=0)[:-1]
    above = np.cumsum(per_bin[::-1].sum(axis=1), axis=0)[::-1][1:]  # bins k+1.., every decision
    out[:, DECISIONS.index(high)] += above
    return out


def sweep(
    which: Literal["review", "decline"],
    policy: CheckedPolicy,
    fired: Bools,
    window: Window,
    weights: Floats,
    points: int = GRID_POINTS,
) -> ThresholdSweep:
    """The policy's figures across a grid of its ``which`` threshold, the rest held."""
    thresholds, costs = policy.document.thresholds, costs_of(policy)
    review, decline = thresholds.review, thresholds.decline
    allow = fired_by_action(policy, fired, ALLOW)
    declined = fired_by_action(policy, fired, DECLINE)
    forced = fired_by_action(policy, fired, FORCE_REVIEW)
    if which == "review":
        low = ladder(window.risk, math.inf, decline, allow, declined, forced)
        switch, high, current, other = (low == APPROVE) & ~allow, REVIEW, review, decline
        grid = threshold_grid(review, 0.0, decline, points)
    else:
        low = ladder(window.risk, review, math.inf, allow, declined, forced)
        switch, high, current, other = ~allow & ~declined, DECLINED, decline, review
        grid = threshold_grid(decline, review, 1.0, points)
    tallies = sweep_tallies(window.risk, low, switch, high, weights, grid)
    found = [
        ThresholdPoint(threshold=float(t), figures=figures(c, window.days, costs))
        for t, c in zip(grid, tallies, strict=True)
    ]
    budget = policy.document.alert_budget
    within = [p for p in found if p.figures.reviews_per_day <= budget]
    return ThresholdSweep(
        threshold=which,
        current=current,
        other=other,
        points=found,
        cost_optimal=least_cost(found, current),
        budget_optimal=least_cost(within, current) if within else None,
    )


def least_cost(points: list[ThresholdPoint], current: float) -> ThresholdPoint:
    """The point of least total cost; of equal costs the nearest to ``current``.

    Calibrated risks take few distinct values, so a range of thresholds often decides alike:
    the current value among them is kept rather than moved for nothing.
    """
    return min(points, key=lambda p: (p.figures.total_cost, abs(p.threshold - current)))
