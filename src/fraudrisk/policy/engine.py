"""Apply a checked policy: thresholds, then rules, to a scored batch or one transaction.

Both paths give the same result (a test checks it row by row): the threshold decision (exactly
:func:`fraudrisk.scoring.decisions.decide`), then the precedence of
:mod:`fraudrisk.policy.document` — allow, decline rule, decline threshold, force_review, review
threshold. ``decided_by`` names the rule at the winning step (None when a threshold decided).
Route and priority apply to alerts only (an approval has no route and factor 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from itertools import compress
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from fraudrisk.policy.document import (
    ALLOW,
    DECLINE,
    FORCE_REVIEW,
    RAISE_PRIORITY,
    ROUTE,
    Action,
    CheckedPolicy,
)
from fraudrisk.policy.inputs import BatchColumns, PolicyBatch, ReasonsInput, RowBuilder
from fraudrisk.policy.scalar import compile_scalar
from fraudrisk.policy.vector import compile_vector
from fraudrisk.scoring.decisions import decide
from fraudrisk.vocab import APPROVE, REVIEW, Decision
from fraudrisk.vocab import DECLINE as DECLINED


@dataclass(frozen=True)
class PolicyDecision:
    """The policy's answer for one transaction.

    Attributes:
        decision: approve, review or decline.
        threshold_decision: What the thresholds alone decide.
        decided_by: The rule that set the decision; None when a threshold did.
        fired: Names of every rule whose condition held, in file order.
        reasons: Their reason texts, in the same order.
        route: The queue of the first route rule that fired (alerts only), else None.
        priority_factor: Largest factor of the raise_priority rules that fired (alerts only).
    """

    decision: Decision
    threshold_decision: Decision
    decided_by: str | None
    fired: tuple[str, ...]
    reasons: tuple[str, ...]
    route: str | None
    priority_factor: float

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class BatchDecisions:
    """The policy's answers for a batch, aligned by row.

    Attributes:
        decision: approve, review or decline per row.
        threshold_decision: What the thresholds alone decide per row.
        fired: Whether each rule's condition held, shape (rows, rules).
        decided_by: Index of the rule that set the decision per row; -1 for a threshold.
        route: Queue per row (None when no route rule fired or no alert).
        priority_factor: Priority factor per row (1 without raise_priority or alert).
        rule_names: The rules, in file order (the columns of ``fired``).
        rule_reasons: Their reason texts.
    """

    decision: npt.NDArray[np.str_]
    threshold_decision: npt.NDArray[np.str_]
    fired: npt.NDArray[np.bool_]
    decided_by: npt.NDArray[np.int64]
    route: npt.NDArray[np.object_]
    priority_factor: npt.NDArray[np.float64]
    rule_names: tuple[str, ...]
    rule_reasons: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.decision)

    def row(self, i: int) -> PolicyDecision:
        """Row ``i`` as the scalar engine answers it."""
        fired = np.flatnonzero(self.fired[i]).tolist()
        by = int(self.decided_by[i])
        return PolicyDecision(
            decision=str(self.decision[i]),  # type: ignore[arg-type]
            threshold_decision=str(self.threshold_decision[i]),  # type: ignore[arg-type]
            decided_by=self.rule_names[by] if by >= 0 else None,
            fired=tuple(self.rule_names[j] for j in fired),
            reasons=tuple(self.rule_reasons[j] for j in fired),
            route=self.route[i],
            priority_factor=float(self.priority_factor[i]),
        )


@dataclass(frozen=True)
class _ScalarRule:
    index: int
    name: str
    action: Action
    holds: Callable[[Mapping[str, Any]], Any]
    reason: str
    queue: str | None
    factor: float


def threshold_decision(risk: float, review: float, decline: float) -> Decision:
    """:func:`~fraudrisk.scoring.decisions.decide` for one score."""
    if risk >= decline:
        return DECLINED
    if risk >= review:
        return REVIEW
    return APPROVE


class PolicyEngine:
    """A checked policy compiled once for both evaluators; apply it to batches or rows."""

    def __init__(self, policy: CheckedPolicy) -> None:
        """Compile every rule's condition (scalar closures and vectorised functions)."""
        self.policy = policy
        thresholds = policy.document.thresholds
        self.review, self.decline = thresholds.review, thresholds.decline
        environment = policy.environment
        self._vector = [compile_vector(r.condition, environment) for r in policy.rules]
        self._scalar = [
            _ScalarRule(
                i,
                r.name,
                r.spec.action,
                compile_scalar(r.condition, environment),
                r.spec.reason,
                r.spec.queue,
                r.spec.factor or 1.0,
            )
            for i, r in enumerate(policy.rules)
        ]
        self._tests = tuple(rule.holds for rule in self._scalar)
        self._indices = tuple(range(len(self._scalar)))
        self._rows = RowBuilder(policy.symbols)
        self.rule_names = tuple(r.name for r in policy.rules)
        self._actions = np.array([r.spec.action for r in policy.rules], dtype=object)

    # ------------------------------------------------------------------ vectorised

    def rule_hits(self, batch: PolicyBatch) -> npt.NDArray[np.bool_]:
        """Whether each rule's condition holds on each row, shape (rows, rules)."""
        columns = BatchColumns(batch, self.policy.environment)
        hits = np.zeros((len(batch), len(self._vector)), dtype=np.bool_)
        for j, condition in enumerate(self._vector):
            hits[:, j] = condition(columns)
        return hits

    def _first(self, hits: npt.NDArray[np.bool_], action: Action) -> npt.NDArray[np.int64]:
        """Per row, the index of the first rule of ``action`` that fired, or -1."""
        rules = np.flatnonzero(self._actions == action)
        if not len(rules):
            return np.full(len(hits), -1, dtype=np.int64)
        sub = hits[:, rules]
        return np.where(sub.any(axis=1), rules[sub.argmax(axis=1)], -1).astype(np.int64)

    def decide_batch(self, batch: PolicyBatch) -> BatchDecisions:
        """Decisions, fired rules, routes and priority factors of every row of ``batch``."""
        risk = np.asarray(batch.risk, dtype=np.float64)
        base = decide(risk, self.review, self.decline)
        hits = self.rule_hits(batch)
        decision, decided_by = base.copy(), np.full(len(risk), -1, dtype=np.int64)
        steps = (
            (self._first(hits, FORCE_REVIEW), REVIEW, base != DECLINED),
            (self._first(hits, DECLINE), DECLINED, None),
            (self._first(hits, ALLOW), APPROVE, None),
        )
        for first, outcome, allowed in steps:  # weakest first: the stronger overwrite
            applies = first >= 0 if allowed is None else (first >= 0) & allowed
            decision[applies] = outcome
            decided_by[applies] = first[applies]
        alert = decision != APPROVE
        return BatchDecisions(
            decision=decision,
            threshold_decision=base,
            fired=hits,
            decided_by=decided_by,
            route=self._routes(hits, alert),
            priority_factor=self._factors(hits, alert),
            rule_names=self.rule_names,
            rule_reasons=tuple(r.spec.reason for r in self.policy.rules),
        )

    def _routes(
        self, hits: npt.NDArray[np.bool_], alert: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.object_]:
        first = self._first(hits, ROUTE)
        queues = np.array([r.spec.queue for r in self.policy.rules] + [None], dtype=object)
        routed: npt.NDArray[np.object_] = queues[np.where(alert, first, -1)]
        return routed

    def _factors(
        self, hits: npt.NDArray[np.bool_], alert: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.float64]:
        rules = np.flatnonzero(self._actions == RAISE_PRIORITY)
        factors = np.ones(len(hits), dtype=np.float64)
        if len(rules):
            values = np.array([self.policy.rules[j].spec.factor for j in rules], dtype=np.float64)
            factors = np.where(hits[:, rules], values, 1.0).max(axis=1)
        return np.where(alert, factors, 1.0)

    # ---------------------------------------------------------------------- scalar

    def decide_one(
        self,
        risk: float,
        transaction: Mapping[str, Any] | BaseModel,
        features: Mapping[str, Any] | None = None,
        reasons: ReasonsInput | None = None,
    ) -> PolicyDecision:
        """The decision of one scored transaction.

        Args:
            risk: Its calibrated probability of fraud.
            transaction: Its fields (a :class:`~fraudrisk.schemas.Transaction` or a mapping).
            features: Its feature values by name (only those the rules read are needed).
            reasons: Its reason codes (scorer JSON or feature names), if the rules read them.

        Raises:
            PolicyInputError: If a value the rules read is missing.
        """
        base = threshold_decision(risk, self.review, self.decline)
        if not self._scalar:
            return PolicyDecision(base, base, None, (), (), None, 1.0)
        fired = self.fired(self._rows(risk, transaction, features, reasons))
        decision, by, route, factor = self.settle(base, fired)
        rules = [self._scalar[j] for j in fired]
        return PolicyDecision(
            decision,
            base,
            None if by < 0 else self._scalar[by].name,
            tuple(r.name for r in rules),
            tuple(r.reason for r in rules),
            route,
            factor,
        )

    def fired(self, row: Mapping[str, Any]) -> list[int]:
        """Indices of the rules whose condition holds on a normalised row, in file order.

        Args:
            row: The scalar evaluator's row (:class:`~fraudrisk.policy.inputs.RowBuilder`):
                ``risk``, the columns the rules read, normalised, and ``reasons`` if read.
        """
        return list(compress(self._indices, [holds(row) for holds in self._tests]))

    def settle(self, base: Decision, fired: list[int]) -> tuple[Decision, int, str | None, float]:
        """What the rules ``fired`` (indices, in file order) make of the thresholds' ``base``.

        Returns:
            The decision, the index of the rule that set it (-1: a threshold did), the route
            and the priority factor (an approval has no route and factor 1).
        """
        if not fired:
            return base, -1, None, 1.0
        first: dict[str, int] = {}
        for j in fired:
            first.setdefault(self._scalar[j].action, j)
        decision, by = self._ladder(base, first)
        if decision == APPROVE:
            return decision, by, None, 1.0
        route = first.get(ROUTE)
        factors = [
            self._scalar[j].factor for j in fired if self._scalar[j].action == RAISE_PRIORITY
        ]
        return (
            decision,
            by,
            None if route is None else self._scalar[route].queue,
            max(factors, default=1.0),
        )

    @staticmethod
    def _ladder(base: Decision, first: dict[str, int]) -> tuple[Decision, int]:
        """The decision and the rule that set it (-1: none), by the precedence of the actions.

        Args:
            base: The thresholds' decision.
            first: The first rule that fired of each action.
        """
        if ALLOW in first:
            return APPROVE, first[ALLOW]
        if DECLINE in first:
            return DECLINED, first[DECLINE]
        if base != DECLINED and FORCE_REVIEW in first:
            return REVIEW, first[FORCE_REVIEW]
        return base, -1
