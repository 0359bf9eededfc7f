"""Score a batch of transactions: state → features → calibrated risk → decision and reasons.

One :class:`Scorer` per served model variant. A batch is scored vectorised: one online read per
entity kind, one kernel pass, one model call. When the model or the online store fails at run
time, every transaction of the batch still gets a decision from the configured rules, flagged
``fallback`` (and the error is logged once per batch, without transaction data).

A :class:`~fraudrisk.scoring.decisions.PolicyProvider` (the live decision policy) may decide
instead of the model's thresholds: its thresholds flag the rows whose reason codes are computed
(what its rules read as ``reasons``), its rules then decide, and the rows its rules send to an
alert get their reason codes too, so they show in the case. Each batch records the policy
version that decided it (None under the model's thresholds or the fallback rules).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fraudrisk.config import ServingSettings
from fraudrisk.scoring.decisions import (
    FALLBACK_SCORE,
    AppliedPolicy,
    PolicyInputs,
    PolicyOutcome,
    PolicyProvider,
    decide,
    fallback_decisions,
    reason_codes,
    thresholds_of,
)
from fraudrisk.scoring.model import LoadedModel
from fraudrisk.scoring.state_reader import StateReader
from fraudrisk.scoring.vectors import TransactionBatch, batch_features, single_features
from fraudrisk.vocab import APPROVE

log = logging.getLogger(__name__)
VELOCITY_FEATURE = "customer_id_nb_tx_1hour_window"


#: The per-row policy columns of a :class:`RowScores`, and their value without a policy.
POLICY_COLUMNS: dict[str, Any] = {
    "policy_version": None,
    "route": None,
    "priority_factor": 1.0,
    "policy_rules": "[]",
}


@dataclass(frozen=True)
class ScoredBatch:
    """Scores and decisions of a batch, aligned with its transactions.

    ``route``, ``priority_factor`` and ``policy_rules`` are per row (None: no policy applied).
    """

    risk_score: npt.NDArray[np.float64]
    decision: npt.NDArray[np.str_]
    reason_codes: list[str]
    model_name: str
    model_version: str
    variant: str
    fallback: bool
    policy_version: int | None = None
    route: list[str | None] | None = None
    priority_factor: list[float] | None = None
    policy_rules: list[str] | None = None

    def __len__(self) -> int:
        return len(self.risk_score)

    def policy_column(self, name: str, i: int) -> Any:
        """Row ``i``'s value of a policy column (its default when no policy applied)."""
        if name == "policy_version":
            return self.policy_version
        values = getattr(self, name)
        return POLICY_COLUMNS[name] if values is None else values[i]


@dataclass(frozen=True)
class RowScores:
    """Scores of a request whose rows may come from different variants (one entry per row)."""

    risk_score: npt.NDArray[np.float64]
    decision: list[str]
    reason_codes: list[str]
    model_name: list[str]
    model_version: list[str]
    variant: list[str]
    fallback: list[bool]
    policy_version: list[int | None] | None = None
    route: list[str | None] | None = None
    priority_factor: list[float] | None = None
    policy_rules: list[str] | None = None

    def __post_init__(self) -> None:
        """Policy columns left out are filled with their no-policy value."""
        for name, default in POLICY_COLUMNS.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, [default] * len(self.risk_score))

    @classmethod
    def merge(cls, n: int, parts: Iterable[tuple[npt.NDArray[np.int64], ScoredBatch]]) -> RowScores:
        """Put the variants' sub-batch results back in request order."""
        risk = np.zeros(n, dtype=np.float64)
        columns: dict[str, list[Any]] = {
            name: [None] * n
            for name in (
                "decision",
                "reason_codes",
                "model_name",
                "model_version",
                "variant",
                "fallback",
                *POLICY_COLUMNS,
            )
        }
        for rows, scored in parts:
            risk[rows] = scored.risk_score
            for i, row in enumerate(rows.tolist()):
                columns["decision"][row] = str(scored.decision[i])
                columns["reason_codes"][row] = scored.reason_codes[i]
                columns["model_name"][row] = scored.model_name
                columns["model_version"][row] = scored.model_version
                columns["variant"][row] = scored.variant
                columns["fallback"][row] = scored.fallback
                for name in POLICY_COLUMNS:
                    columns[name][row] = scored.policy_column(name, i)
        return cls(risk_score=risk, **columns)

    def __len__(self) -> int:
        return len(self.risk_score)


class Scorer:
    """Scores batches with one model, its decision thresholds and the fallback rules."""

    def __init__(
        self,
        model: LoadedModel | None,
        states: StateReader,
        serving: ServingSettings,
        variant: str = "default",
        policy: PolicyProvider | None = None,
    ) -> None:
        """Bind a loaded model (None = rules only) to an online state reader.

        ``policy``, when given, decides instead of the model's thresholds whenever it has a
        current version.

        Raises:
            ModelLoadError: If the model has no thresholds and the config sets none.
        """
        self.model = model
        self.states = states
        self.serving = serving
        self.variant = variant
        self.policy = policy
        self.thresholds = thresholds_of(model.card, serving) if model else None
        self._names: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None = None

    @property
    def version(self) -> str:
        """The served model's version ("" when rules only)."""
        return self.model.card.version if self.model else ""

    def score(
        self,
        batch: TransactionBatch,
        fields: Mapping[str, Any] | None = None,
        *,
        observe: bool = True,
    ) -> ScoredBatch:
        """Score every transaction of ``batch`` (rules only if the model cannot be used).

        Args:
            batch: The transactions.
            fields: More transaction fields by name (columns aligned with ``batch``, e.g.
                ``channel``) for the policy's rules; a field left out reads as missing.
            observe: Tell the policy what it decided (its metrics, its shadow); off for a
                warm-up probe, which is no transaction.
        """
        if self.model is None or self.thresholds is None:
            return self._fallback(batch, reason="no model loaded")
        try:
            applied = self.policy.current() if self.policy is not None else None
            if applied is not None:
                return self._score_policy(batch, self.model, applied, fields or {}, observe)
            return self._score(batch, self.model, self.thresholds)
        except Exception as error:  # any model/store failure: rules decide
            return self._fallback(batch, reason=f"{type(error).__name__}: {error}")

    def features(self, batch: TransactionBatch) -> npt.NDArray[np.float32]:
        """The model's input matrix of ``batch`` from the current online state."""
        assert self.model is not None
        return self._features(batch, self.model.feature_names)

    def _features(self, batch: TransactionBatch, names: tuple[str, ...]) -> npt.NDArray[np.float32]:
        states = self.states.read(batch.customer_id.tolist(), batch.terminal_id.tolist())
        build = single_features if len(batch) == 1 else batch_features  # equal values
        return build(batch, states.customers, states.terminals, names)

    def _score(
        self, batch: TransactionBatch, model: LoadedModel, thresholds: tuple[float, float]
    ) -> ScoredBatch:
        matrix = self._features(batch, model.feature_names)
        risk = model.probability(matrix)
        decisions = decide(risk, *thresholds)
        return ScoredBatch(
            risk_score=risk,
            decision=decisions,
            reason_codes=self._reasons(model, matrix, decisions),
            model_name=model.card.name,
            model_version=model.card.version,
            variant=self.variant,
            fallback=False,
        )

    def _score_policy(
        self,
        batch: TransactionBatch,
        model: LoadedModel,
        applied: AppliedPolicy,
        fields: Mapping[str, Any],
        observe: bool,
    ) -> ScoredBatch:
        """Risk from the model, then the policy's thresholds and rules decide."""
        k = len(model.feature_names)
        names = self._policy_names(model, applied.features)
        matrix = self._features(batch, names)
        inputs_matrix = np.ascontiguousarray(matrix[:, :k]) if len(names) > k else matrix
        risk = model.probability(inputs_matrix)
        base = decide(risk, *applied.thresholds)
        reasons = self._reasons(model, inputs_matrix, base)
        inputs = PolicyInputs(batch, fields, matrix, names, risk, reasons, base)
        outcome = applied.apply(inputs)
        alerted = (outcome.decision != APPROVE) & (base == APPROVE)  # made alerts by a rule
        self._reasons(model, inputs_matrix, outcome.decision, reasons, np.flatnonzero(alerted))
        if observe and self.policy is not None:
            self.policy.observe(inputs, outcome)
        return self._scored(model, risk, reasons, outcome)

    def _policy_names(self, model: LoadedModel, features: tuple[str, ...]) -> tuple[str, ...]:
        """The model's features, then those of ``features`` it lacks (kept per policy)."""
        own, cached = model.feature_names, self._names
        if cached is None or cached[0] is not features or cached[1] is not own:
            extra = tuple(f for f in features if f not in own)
            cached = self._names = (features, own, own + extra)
        return cached[2]

    def _scored(
        self,
        model: LoadedModel,
        risk: npt.NDArray[np.float64],
        reasons: list[str],
        o: PolicyOutcome,
    ) -> ScoredBatch:
        """The scored batch of a policy's decisions."""
        return ScoredBatch(
            risk_score=risk,
            decision=o.decision,
            reason_codes=reasons,
            model_name=model.card.name,
            model_version=model.card.version,
            variant=self.variant,
            fallback=False,
            policy_version=o.version,
            route=o.route,
            priority_factor=o.priority_factor.tolist(),
            policy_rules=o.rules,
        )

    def _reasons(
        self,
        model: LoadedModel,
        matrix: npt.NDArray[np.float32],
        decisions: npt.NDArray[np.str_],
        reasons: list[str] | None = None,
        only: npt.NDArray[np.intp] | None = None,
    ) -> list[str]:
        """Reason codes of every row, or of the flagged rows only (``[]`` for the others).

        With ``reasons`` and ``only``: the codes of rows ``only`` are added to ``reasons``
        (rows a policy rule made alerts), unless every row is explained already.
        """
        reasons = ["[]"] * len(matrix) if reasons is None else reasons
        if model.contributions is None or not self.serving.reason_codes:
            return reasons
        rows = np.arange(len(matrix))
        if self.serving.reason_codes_for == "flagged":
            rows = np.flatnonzero(decisions != APPROVE) if only is None else only
        elif only is not None:
            return reasons
        if len(rows):
            explained = reason_codes(
                model.contributions(matrix[rows]),
                matrix[rows],
                model.feature_names,
                self.serving.reason_codes,
            )
            for row, text in zip(rows.tolist(), explained, strict=True):
                reasons[row] = text
        return reasons

    def _fallback(self, batch: TransactionBatch, reason: str) -> ScoredBatch:
        log.warning(
            "variant %s: rules-only decisions for %d transactions (%s)",
            self.variant,
            len(batch),
            reason,
        )
        try:
            velocity = self._features(batch, (VELOCITY_FEATURE,))[:, 0].astype(np.float64)
        except Exception as error:  # no state either: amount rules alone
            log.warning("online state unavailable too (%s): amount rules only", error)
            velocity = None
        decisions, reasons = fallback_decisions(
            batch.tx_amount.astype(np.float64), velocity, self.serving.fallback
        )
        risk = np.array([FALLBACK_SCORE[str(d)] for d in decisions], dtype=np.float64)
        return ScoredBatch(
            risk_score=risk,
            decision=decisions,
            reason_codes=reasons,
            model_name=self.serving.model_name,
            model_version=self.version or "rules",
            variant=self.variant,
            fallback=True,
        )
