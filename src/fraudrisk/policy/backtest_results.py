"""The backtest's result: a stable JSON schema (``fraudrisk policy backtest --json``).

Every figure is over the labelled transactions of the window (a transaction without a known
label is left out and counted in :attr:`BacktestResult.unlabelled`). A share whose denominator
is zero (precision without alerts, recall without frauds) is ``null``. Costs follow the
policy's ``costs`` (the defaults of :class:`~fraudrisk.policy.document.Costs` when it has
none): a review costs ``review`` (analysts catch every fraud they review), a declined genuine
transaction ``false_decline``, an approved fraud its amount (or the fixed ``missed_fraud``).
``schema_version`` changes only when a field is removed or changes meaning.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fraudrisk.policy.document import Action

#: Version of the JSON below; bumped when a field is removed or changes meaning.
SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Figures(_Frozen):
    """What a set of decisions achieves on the window (an alert: a review or a decline)."""

    approved: int = Field(description="Transactions approved.")
    reviewed: int = Field(description="Transactions sent to review.")
    declined: int = Field(description="Transactions declined.")
    alerts_per_day: float = Field(description="(reviewed + declined) / days.")
    reviews_per_day: float = Field(description="reviewed / days: what the alert budget bounds.")
    precision: float | None = Field(description="Frauds among the alerts / alerts.")
    recall: float | None = Field(description="Frauds alerted / frauds.")
    fraud_amount_caught: float = Field(description="Amount of the frauds alerted.")
    review_cost: float = Field(description="costs.review x reviewed.")
    false_decline_cost: float = Field(description="costs.false_decline x genuine declined.")
    missed_fraud_cost: float = Field(description="Loss of the frauds approved.")
    total_cost: float = Field(description="review + false-decline + missed-fraud cost.")


class PolicyOutcome(_Frozen):
    """One policy applied to the window."""

    name: str = Field(description="The policy's name.")
    source: str = Field(description="Where it was read from.")
    review: float = Field(description="Its review threshold.")
    decline: float = Field(description="Its decline threshold.")
    figures: Figures


class RuleFigures(_Frozen):
    """One rule of the candidate on the window (its condition, whatever decided the row)."""

    name: str
    action: Action
    hits: int = Field(description="Transactions where its condition held.")
    hit_rate: float = Field(description="hits / transactions.")
    frauds: int = Field(description="Frauds among its hits.")
    precision: float | None = Field(description="frauds / hits.")
    recall: float | None = Field(description="frauds / all frauds of the window.")
    false_positive_rate: float | None = Field(
        description="Genuine hits / genuine transactions of the window."
    )
    fraud_amount: float = Field(description="Amount of the frauds among its hits.")
    decided: int = Field(description="Transactions whose decision it set (decided_by).")
    overlap_share: float | None = Field(description="Share of its hits also hit by another rule.")
    overlap: dict[str, int] = Field(description="Hits shared with each other rule, by name.")


class ThresholdPoint(_Frozen):
    """The candidate with one threshold moved to ``threshold`` (rules and the other kept)."""

    threshold: float
    figures: Figures


class ThresholdSweep(_Frozen):
    """The candidate's figures across a grid of one threshold."""

    threshold: Literal["review", "decline"] = Field(description="The threshold moved.")
    current: float = Field(description="The candidate's value of it.")
    other: float = Field(description="The other threshold, held at the candidate's value.")
    points: list[ThresholdPoint] = Field(description="Ascending thresholds (current included).")
    cost_optimal: ThresholdPoint = Field(
        description="The point of least total cost (of equal costs, the nearest to current)."
    )
    budget_optimal: ThresholdPoint | None = Field(
        description="Least total cost among points with reviews_per_day <= the alert budget "
        "(null when none is within it)."
    )


class BacktestResult(_Frozen):
    """A candidate policy, beside the active one, on a labelled window."""

    schema_version: int = SCHEMA_VERSION
    start: dt.date = Field(description="First day of the window.")
    end: dt.date = Field(description="Last day (clipped to the last day labelled by as_of).")
    as_of: dt.date = Field(description="Labels are those known by the end of this day.")
    days: int = Field(description="Days of the window (the per-day figures divide by it).")
    model: str = Field(description="The model that scored the window (URI and version).")
    transactions: int = Field(description="Labelled transactions backtested.")
    unlabelled: int = Field(description="Transactions of the window without a known label.")
    frauds: int
    fraud_amount: float = Field(description="Amount of all frauds of the window.")
    alert_budget: int = Field(description="The candidate's reviews per day.")
    costs: dict[str, float | str] = Field(description="The candidate's costs.")
    reasons_for: str = Field(
        description="Which rows have reason codes: those each policy's thresholds flag."
    )
    candidate: PolicyOutcome
    active: PolicyOutcome | None
    change: dict[str, float | None] | None = Field(
        description="Candidate minus active, per numeric figure (null without an active)."
    )
    rules: list[RuleFigures] = Field(description="The candidate's rules, in file order.")
    review_sweep: ThresholdSweep
    decline_sweep: ThresholdSweep
