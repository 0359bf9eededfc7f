"""One policy version as the scorers apply it, and the policy's Prometheus metrics.

:class:`AppliedVersion` is the scorer's :class:`~fraudrisk.scoring.decisions.AppliedPolicy`:
the checked policy compiled once (:class:`~fraudrisk.policy.engine.PolicyEngine`), applied to a
scored batch exactly as :meth:`~fraudrisk.policy.engine.PolicyEngine.decide_batch` decides it
(a batch of one row goes through the scalar evaluator, which agrees and is faster there).

Its columns come from the batch (ids, amount, time; ``tx_datetime`` has whole seconds),
then the fields the caller passed (``channel``, ``country``…; one left out reads as missing:
``""`` or NaN), then the feature matrix (the scorer adds the features the rules read that the
model lacks). ``reasons`` are the reason codes the scorer computed: those of the rows the
policy's own thresholds flag, so a rule reading ``reasons`` sees none on a row the thresholds
approve (a backtest does the same).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import weakref
from collections import Counter as Tally
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from fraudrisk.policy.document import CheckedPolicy, CheckedRule
from fraudrisk.policy.engine import PolicyEngine, threshold_decision
from fraudrisk.policy.inputs import PolicyBatch, normaliser, reason_set
from fraudrisk.policy.loader import load_policy_text
from fraudrisk.policy.types import REASONS, RISK, Type
from fraudrisk.scoring.decisions import PolicyInputs, PolicyOutcome

log = logging.getLogger(__name__)
#: Batches this small go through the scalar evaluator (no numpy call per rule).
SCALAR_ROWS = 1
_DAY = 86_400
#: Transaction columns a scoring batch holds as they are.
_BATCH_COLUMNS = frozenset({"tx_amount", "transaction_id", "customer_id", "terminal_id"})
#: Transaction columns derived from the batch's unix seconds.
_TIME_COLUMNS = ("tx_datetime", "tx_time_seconds", "tx_time_days")
_UNIX_EPOCH = dt.datetime(1970, 1, 1)
#: Row plans kept per version (one per feature list and set of fields seen).
_PLANS = 64


@dataclass(frozen=True)
class PolicyMetrics:
    """The policy's metric families; create once per registry (:func:`policy_metrics`)."""

    version: Gauge
    reloads: Counter
    reload_failures: Counter
    errors: Counter
    decisions: Counter
    shadow_skipped: Counter
    _children: dict[tuple[str, str, str], Any] = field(default_factory=dict, compare=False)

    def count(self, version: int | None, role: str, decisions: npt.NDArray[np.str_]) -> None:
        """Count a batch's decisions of one policy version (``role``: active or shadow)."""
        label = "none" if version is None else str(version)
        values = decisions.tolist()
        counts = {values[0]: 1} if len(values) == 1 else Tally(values)
        for decision, n in counts.items():
            key = (label, role, decision)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.decisions.labels(*key)
            child.inc(n)


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, PolicyMetrics] = (
    weakref.WeakKeyDictionary()
)


def policy_metrics(registry: CollectorRegistry = REGISTRY) -> PolicyMetrics:
    """The policy's metric families in ``registry`` (created on first use)."""
    if registry not in _BY_REGISTRY:
        _BY_REGISTRY[registry] = PolicyMetrics(
            version=Gauge(
                "fraudrisk_policy_active_version",
                "The policy version applied (0: the model's thresholds).",
                registry=registry,
            ),
            reloads=Counter(
                "fraudrisk_policy_reloads", "Policy versions swapped in.", registry=registry
            ),
            reload_failures=Counter(
                "fraudrisk_policy_reload_failures",
                "Active versions that could not be loaded (never applied).",
                ("policy_version",),
                registry=registry,
            ),
            errors=Counter(
                "fraudrisk_policy_errors",
                "Batches whose rules failed (decided by that version's thresholds).",
                ("policy_version",),
                registry=registry,
            ),
            decisions=Counter(
                "fraudrisk_policy_decisions",
                "Decisions by policy version, role (active, shadow) and decision.",
                ("policy_version", "role", "decision"),
                registry=registry,
            ),
            shadow_skipped=Counter(
                "fraudrisk_policy_shadow_skipped",
                "Transactions not shadow-decided (queue full or failure).",
                registry=registry,
            ),
        )
    return _BY_REGISTRY[registry]


class AppliedVersion:
    """A loaded, compiled policy version: applied to scored batches."""

    def __init__(
        self,
        policy: CheckedPolicy,
        version: int | None,
        digest: str,
        epoch: dt.date,
        metrics: PolicyMetrics | None = None,
    ) -> None:
        """Compile ``policy``; ``epoch`` is day 0 of the lake (``tx_time_seconds``)."""
        self.policy, self.digest = policy, digest
        self._version = version
        self.engine = PolicyEngine(policy)
        self.metrics = metrics
        self.rules: tuple[CheckedRule, ...] = policy.rules
        self.columns = policy.columns  # properties of the checked policy walk the syntax trees:
        self.reads_reasons = policy.reads_reasons  # computed once, not per batch
        self.epoch_seconds = int(dt.datetime.combine(epoch, dt.time(), dt.UTC).timestamp())
        self._fragments = [
            json.dumps({"rule": r.name, "reason": r.spec.reason}, separators=(",", ":"))
            for r in policy.rules
        ]
        self._failed = False
        self._plans: dict[tuple[tuple[str, ...], tuple[str, ...]], _RowPlan] = {}
        self.column_types = {  # as RowBuilder types them (the last symbol of a column)
            s.column: s.type for s in policy.symbols if s.source in ("transaction", "feature")
        }
        names = {s.column for s in policy.symbols if s.source == "feature"}
        self._features = tuple(sorted(names))

    @classmethod
    def of_text(cls, text: str, version: int | None, digest: str, epoch: dt.date) -> AppliedVersion:
        """A version from its YAML (checked against every transaction field and feature).

        Raises:
            PolicyError: If it does not parse or type-check.
        """
        return cls(load_policy_text(text, f"policy v{version}"), version, digest, epoch)

    @property
    def version(self) -> int | None:
        """Its stored version number."""
        return self._version

    @property
    def thresholds(self) -> tuple[float, float]:
        """Its (review, decline) thresholds."""
        return self.engine.review, self.engine.decline

    @property
    def features(self) -> tuple[str, ...]:
        """The features its rules read."""
        return self._features

    # ------------------------------------------------------------------------------ apply
    def apply(self, inputs: PolicyInputs) -> PolicyOutcome:
        """Its decisions on a scored batch; a failure of the rules leaves the thresholds'."""
        try:
            if len(inputs.risk) <= SCALAR_ROWS:
                return self._apply_rows(inputs)
            return self._apply_batch(inputs)
        except Exception as error:  # a bug must not stop scoring: the thresholds still decide
            if not self._failed:
                log.error("policy v%s rules failed, thresholds decide: %s", self.version, error)
                self._failed = True
            if self.metrics is not None:
                self.metrics.errors.labels(str(self.version)).inc()
            n = len(inputs.risk)
            return PolicyOutcome(
                inputs.threshold_decision, [None] * n, np.ones(n), ["[]"] * n, self.version
            )

    def _apply_batch(self, inputs: PolicyInputs) -> PolicyOutcome:
        reads = self.reads_reasons
        batch = PolicyBatch(
            inputs.risk, self.inputs_columns(inputs), inputs.reasons if reads else None
        )
        d = self.engine.decide_batch(batch)
        rules = ["[]"] * len(d)
        if d.fired.shape[1]:
            for i in np.flatnonzero(d.fired.any(axis=1)).tolist():
                rules[i] = self._rules_json(np.flatnonzero(d.fired[i]).tolist())
        return PolicyOutcome(d.decision, d.route.tolist(), d.priority_factor, rules, self.version)

    def _apply_rows(self, inputs: PolicyInputs) -> PolicyOutcome:
        """Row by row with the scalar evaluator: python values, no numpy call per rule.

        The same decisions as :meth:`PolicyEngine.decide_one` on the row
        :meth:`inputs_columns` holds (each value normalised as its
        :class:`~fraudrisk.policy.inputs.RowBuilder` would), without rebuilding it.
        """
        plan = self._plan(inputs) if self.rules else None
        review, decline = self.engine.review, self.engine.decline
        decisions, routes, factors, rules = [], [], [], []
        for i, risk in enumerate(inputs.risk.tolist()):
            base = threshold_decision(risk, review, decline)
            fired = [] if plan is None else self.engine.fired(plan.row(inputs, i, risk))
            decision, _, route, factor = self.engine.settle(base, fired)
            decisions.append(decision)
            routes.append(route)
            factors.append(factor)
            rules.append(self._rules_json(fired) if fired else "[]")
        decided = np.array(decisions, dtype="<U7")
        return PolicyOutcome(decided, routes, np.array(factors), rules, self.version)

    def _plan(self, inputs: PolicyInputs) -> _RowPlan:
        """Where the columns of ``inputs``' rows come from (cached per features and fields)."""
        key = (inputs.names, tuple(inputs.fields))
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _PLANS:
                self._plans.clear()
            plan = _RowPlan.of(self, key[0], inputs.fields)
            self._plans[key] = plan
        return plan

    def _rules_json(self, fired: list[int]) -> str:
        return "[" + ",".join(self._fragments[j] for j in fired) + "]"

    def inputs_columns(self, inputs: PolicyInputs) -> dict[str, Any]:
        """The columns the rules read: batch, then caller's fields, then the features."""
        features = {name: j for j, name in enumerate(inputs.names)}
        out: dict[str, Any] = {}
        for column in self.columns:
            value = self._batch_column(inputs, column, inputs.fields)
            if value is None and column in features:
                value = inputs.matrix[:, features[column]]
            out[column] = np.full(len(inputs.risk), None, dtype=object) if value is None else value
        return out

    def _batch_column(self, inputs: PolicyInputs, column: str, fields: Mapping[str, Any]) -> Any:
        """A transaction column of the batch or the caller's fields (None: neither has it)."""
        batch = inputs.batch
        if column in _BATCH_COLUMNS:
            return getattr(batch, column)
        if column == "tx_datetime":
            return batch.seconds.astype("datetime64[s]").astype("datetime64[us]")
        if column == "tx_time_seconds":
            return batch.seconds - self.epoch_seconds
        if column == "tx_time_days":
            return (batch.seconds - self.epoch_seconds) // _DAY
        return fields.get(column)


def _time_reader(column: str, epoch_s: int) -> Callable[[int], Any]:
    """The normalised value of a time column from the batch's unix seconds."""
    if column == "tx_datetime":  # naive UTC, as fromtimestamp(seconds, UTC) without its zone
        return lambda seconds: _UNIX_EPOCH + dt.timedelta(seconds=seconds)
    if column == "tx_time_seconds":
        return lambda seconds: float(seconds - epoch_s)
    return lambda seconds: float((seconds - epoch_s) // _DAY)


@dataclass(frozen=True)
class _RowPlan:
    """Where each column a version reads comes from, by the precedence of ``inputs_columns``.

    Fixed for one feature list and one set of caller's fields: a row is then read with one
    python lookup per column, normalised as :class:`~fraudrisk.policy.inputs.RowBuilder`
    normalises it.

    Attributes:
        numbers: The batch's number columns (``tx_amount``, the ids).
        times: The columns derived from the batch's seconds, each with its reader.
        fields: The caller's fields, each with its normaliser.
        features: The matrix's number columns: (name, index in a row of the matrix).
        converted: The matrix's other columns: (name, index, normaliser).
        missing: The normalised value of each column nothing holds.
        reasons: Whether the rules read the reason codes.
    """

    numbers: tuple[str, ...]
    times: tuple[tuple[str, Callable[[int], Any]], ...]
    fields: tuple[tuple[str, Callable[[Any], Any]], ...]
    features: tuple[tuple[str, int], ...]
    converted: tuple[tuple[str, int, Callable[[Any], Any]], ...]
    missing: Mapping[str, Any]
    reasons: bool

    @classmethod
    def of(
        cls, version: AppliedVersion, names: tuple[str, ...], fields: Collection[str]
    ) -> _RowPlan:
        """The plan of ``version``'s columns, given the matrix's ``names`` and the ``fields``.

        Raises:
            PolicyInputError: If a datetime column is missing (it has no missing value).
        """
        index = {name: j for j, name in enumerate(names)}
        numbers, times, given, features, converted, missing = [], [], [], [], [], {}
        for column in version.columns:
            kind = version.column_types[column]
            if column in _BATCH_COLUMNS:  # numbers of the schema: float() normalises them
                numbers.append(column)
            elif column in _TIME_COLUMNS:
                times.append((column, _time_reader(column, version.epoch_seconds)))
            elif column in fields:
                given.append((column, normaliser(kind)))
            elif column in index and kind is Type.NUMBER:  # a float matrix: floats already
                features.append((column, index[column]))
            elif column in index:
                converted.append((column, index[column], normaliser(kind)))
            else:
                missing[column] = normaliser(kind)(None)
        return cls(
            tuple(numbers),
            tuple(times),
            tuple(given),
            tuple(features),
            tuple(converted),
            missing,
            version.reads_reasons,
        )

    def row(self, inputs: PolicyInputs, i: int, risk: float) -> dict[str, Any]:
        """Row ``i`` of ``inputs`` as the scalar evaluator reads it (``risk``: its score)."""
        row = {RISK: risk, **self.missing}
        batch = inputs.batch
        for column in self.numbers:
            row[column] = float(getattr(batch, column).item(i))
        if self.times:
            seconds = batch.seconds.item(i)
            for column, read in self.times:
                row[column] = read(seconds)
        fields = inputs.fields
        for column, normalise in self.fields:
            row[column] = normalise(fields[column][i])
        if self.features or self.converted:
            values = inputs.matrix[i].tolist()
            for column, j in self.features:
                row[column] = values[j]
            for column, j, normalise in self.converted:
                row[column] = normalise(values[j])
        if self.reasons:
            row[REASONS] = reason_set(inputs.reasons[i])
        return row
