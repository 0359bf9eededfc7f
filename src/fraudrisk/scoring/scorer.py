"""Score a batch of transactions: state → features → calibrated risk → decision and reasons.

One :class:`Scorer` per served model variant. A batch is scored vectorised: one online read per
entity kind, one kernel pass, one model call. When the model or the online store fails at run
time, every transaction of the batch still gets a decision from the configured rules, flagged
``fallback`` (and the error is logged once per batch, without transaction data).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fraudrisk.config import ServingSettings
from fraudrisk.scoring.decisions import (
    FALLBACK_SCORE,
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


@dataclass(frozen=True)
class ScoredBatch:
    """Scores and decisions of a batch, aligned with its transactions."""

    risk_score: npt.NDArray[np.float64]
    decision: npt.NDArray[np.str_]
    reason_codes: list[str]
    model_name: str
    model_version: str
    variant: str
    fallback: bool

    def __len__(self) -> int:
        return len(self.risk_score)


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
    ) -> None:
        """Bind a loaded model (None = rules only) to an online state reader.

        Raises:
            ModelLoadError: If the model has no thresholds and the config sets none.
        """
        self.model = model
        self.states = states
        self.serving = serving
        self.variant = variant
        self.thresholds = thresholds_of(model.card, serving) if model else None

    @property
    def version(self) -> str:
        """The served model's version ("" when rules only)."""
        return self.model.card.version if self.model else ""

    def score(self, batch: TransactionBatch) -> ScoredBatch:
        """Score every transaction of ``batch`` (rules only if the model cannot be used)."""
        if self.model is None or self.thresholds is None:
            return self._fallback(batch, reason="no model loaded")
        try:
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

    def _reasons(
        self, model: LoadedModel, matrix: npt.NDArray[np.float32], decisions: npt.NDArray[np.str_]
    ) -> list[str]:
        """Reason codes of every row, or of the flagged rows only (``[]`` for the others)."""
        reasons = ["[]"] * len(matrix)
        if model.contributions is None or not self.serving.reason_codes:
            return reasons
        rows = np.arange(len(matrix))
        if self.serving.reason_codes_for == "flagged":
            rows = np.flatnonzero(decisions != APPROVE)
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
