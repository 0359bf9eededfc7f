"""The backtest's window and its sums: decisions tallied with per-row weights, figures.

A tally sums, per decision (:data:`DECISIONS`), five per-row weights: 1, fraud, genuine, fraud
amount and the loss if approved (the amount, or the policy's fixed ``missed_fraud``); every
figure of :class:`~fraudrisk.policy.backtest_results.Figures` is a ratio or a cost of a tally.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fraudrisk.policy.backtest_results import Figures
from fraudrisk.policy.document import Action, CheckedPolicy, Costs
from fraudrisk.policy.inputs import PolicyBatch
from fraudrisk.vocab import APPROVE, DECLINE, REVIEW

#: Decisions, in the order of a tally's rows.
DECISIONS = (APPROVE, REVIEW, DECLINE)
#: A tally's columns: transactions, frauds, genuine ones, fraud amount, missed-fraud loss.
COUNT, FRAUD, GENUINE, AMOUNT, LOSS = range(5)

Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Window:
    """The labelled transactions of a window, scored, aligned by row.

    Attributes:
        risk: The champion's calibrated risk.
        fraud: The label known by ``as_of``.
        amount: The transaction amount.
        columns: Transaction fields and features the policies read, by name.
        reasons: Per feature, True where it is among the row's reason codes; computed for the
            rows with ``risk >= explained_from`` only (None when no policy reads reasons).
        explained_from: The lowest review threshold of the policies (the rows explained).
        start: First day.
        end: Last day.
        as_of: The labels are those known by the end of this day.
        model: The model that scored (URI and version).
        unlabelled: Transactions of the window left out for want of a known label.
    """

    risk: Floats
    fraud: Bools
    amount: Floats
    columns: Mapping[str, Any]
    reasons: Mapping[str, Bools] | None
    explained_from: float
    start: dt.date
    end: dt.date
    as_of: dt.date
    model: str = ""
    unlabelled: int = 0

    def __len__(self) -> int:
        return len(self.risk)

    @property
    def days(self) -> int:
        """Calendar days of the window."""
        return (self.end - self.start).days + 1

    def batch_for(self, policy: CheckedPolicy) -> PolicyBatch:
        """The policy's batch: the reasons of the rows its thresholds flag, as live.

        Raises:
            ValueError: If the policy flags rows below those explained.
        """
        if not policy.reads_reasons or self.reasons is None:
            return PolicyBatch(self.risk, self.columns, None)
        review = policy.document.thresholds.review
        if review < self.explained_from:
            raise ValueError(f"reasons computed from risk {self.explained_from:g}, not {review:g}")
        flagged = self.risk >= review
        return PolicyBatch(
            self.risk, self.columns, {f: m & flagged for f, m in self.reasons.items()}
        )


def costs_of(policy: CheckedPolicy) -> Costs:
    """The policy's costs (the defaults when it sets none)."""
    return policy.document.costs or Costs()


def row_weights(window: Window, costs: Costs) -> Floats:
    """Per row: 1, fraud, genuine, fraud amount, loss if approved; shape (5, rows)."""
    fraud = window.fraud.astype(np.float64)
    amount = np.where(window.fraud, window.amount, 0.0)
    fixed = costs.missed_fraud
    loss = amount if fixed == "amount" else fraud * float(fixed)
    return np.vstack([np.ones(len(window)), fraud, 1.0 - fraud, amount, loss])


def decision_codes(decision: npt.NDArray[np.str_]) -> npt.NDArray[np.int64]:
    """Each decision's row in a tally (:data:`DECISIONS` order)."""
    codes: npt.NDArray[np.int64] = (decision == REVIEW).astype(np.int64)
    codes[decision == DECLINE] = 2
    return codes


def binned(
    codes: npt.NDArray[np.int64], bins: npt.NDArray[np.int64], weights: Floats, n: int
) -> Floats:
    """Tallies per bin, shape (n, 3, 5): the weights summed per (bin, decision)."""
    index = bins * len(DECISIONS) + codes
    size = n * len(DECISIONS)
    sums = [np.bincount(index, weights=column, minlength=size) for column in weights]
    stacked: Floats = np.stack(sums, axis=-1).astype(np.float64, copy=False)
    stacked = stacked.reshape(n, len(DECISIONS), len(weights))
    return stacked


def tally(decision: npt.NDArray[np.str_], weights: Floats) -> Floats:
    """Sums of the weights (:func:`row_weights`) per decision, shape (3, 5)."""
    codes = decision_codes(decision)
    found: Floats = binned(codes, np.zeros(len(codes), np.int64), weights, 1)[0]
    return found


def figures(counts: Floats, days: int, costs: Costs) -> Figures:
    """The figures of a tally (:func:`tally`) over ``days``."""
    approved, reviewed, declined = (round(float(c)) for c in counts[:, COUNT])
    alerts = reviewed + declined
    caught = float(counts[1, FRAUD] + counts[2, FRAUD])
    frauds = float(counts[:, FRAUD].sum())
    review_cost = costs.review * reviewed
    false_decline_cost = costs.false_decline * float(counts[2, GENUINE])
    missed = float(counts[0, LOSS])
    return Figures(
        approved=approved,
        reviewed=reviewed,
        declined=declined,
        alerts_per_day=alerts / days,
        reviews_per_day=reviewed / days,
        precision=caught / alerts if alerts else None,
        recall=caught / frauds if frauds else None,
        fraud_amount_caught=float(counts[1, AMOUNT] + counts[2, AMOUNT]),
        review_cost=review_cost,
        false_decline_cost=false_decline_cost,
        missed_fraud_cost=missed,
        total_cost=review_cost + false_decline_cost + missed,
    )


def fired_by_action(policy: CheckedPolicy, fired: Bools, action: Action) -> Bools:
    """Per row, whether a rule of ``action`` fired."""
    columns = [j for j, rule in enumerate(policy.rules) if rule.spec.action == action]
    if not columns:
        return np.zeros(len(fired), np.bool_)
    return np.asarray(fired[:, columns].any(axis=1), dtype=np.bool_)
