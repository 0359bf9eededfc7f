"""From scores to decisions.

The model's thresholds (overridable by config), reason codes, the rules that decide alone
when no model can be used, and the seam through which a decision policy decides instead of
the model's thresholds: :class:`PolicyProvider` (implemented by
:mod:`fraudrisk.policy.live`; scoring never imports the policy package).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from fraudrisk.config import FallbackRules, ServingSettings
from fraudrisk.scoring.model import ModelCard, ModelLoadError
from fraudrisk.scoring.vectors import TransactionBatch
from fraudrisk.vocab import APPROVE, DECLINE, REVIEW

#: The fallback's risk score: the mid-point of nothing known, flagged by ``fallback=True``.
FALLBACK_SCORE = {APPROVE: 0.0, REVIEW: 0.5, DECLINE: 1.0}


@dataclass(frozen=True)
class PolicyInputs:
    """What a policy decides on: a scored batch, aligned by row.

    Attributes:
        batch: The transactions.
        fields: More transaction fields by name (e.g. ``channel``), when the caller has them.
        matrix: Feature values, one column per name of ``names``.
        names: The model's features, then the extra ones the policy reads.
        risk: Calibrated probability of fraud per row.
        reasons: Reason codes per row (JSON): those of the rows the policy's thresholds flag.
        threshold_decision: What the policy's thresholds alone decide.
    """

    batch: TransactionBatch
    fields: Mapping[str, Any]
    matrix: npt.NDArray[np.float32]
    names: tuple[str, ...]
    risk: npt.NDArray[np.float64]
    reasons: list[str]
    threshold_decision: npt.NDArray[np.str_]


@dataclass(frozen=True)
class PolicyOutcome:
    """A policy's decisions on a batch, aligned by row.

    Attributes:
        decision: approve, review or decline.
        route: The queue a route rule picked for the row's alert, else None.
        priority_factor: The alert's priority factor (1 without raise_priority).
        rules: Per row, a JSON array of the rules that fired (``{"rule", "reason"}``).
        version: The stored policy version that decided (None: not a stored version).
    """

    decision: npt.NDArray[np.str_]
    route: list[str | None]
    priority_factor: npt.NDArray[np.float64]
    rules: list[str]
    version: int | None


class AppliedPolicy(Protocol):
    """One loaded policy version, as the scorer applies it."""

    @property
    def version(self) -> int | None:
        """Its stored version number."""
        ...

    @property
    def thresholds(self) -> tuple[float, float]:
        """Its (review, decline) thresholds."""
        ...

    @property
    def features(self) -> tuple[str, ...]:
        """The features its rules read (the scorer computes those the model lacks)."""
        ...

    def apply(self, inputs: PolicyInputs) -> PolicyOutcome:
        """Its decisions on a scored batch (never raises)."""
        ...


class PolicyProvider(Protocol):
    """Where the scorer finds the policy to apply (swapped live) and reports what it decided."""

    def current(self) -> AppliedPolicy | None:
        """The policy to apply now; None = the model's thresholds."""
        ...

    def observe(self, inputs: PolicyInputs, outcome: PolicyOutcome) -> None:
        """Told every applied batch (e.g. to run a shadow policy); must not raise or block."""
        ...


def thresholds_of(card: ModelCard, serving: ServingSettings) -> tuple[float, float]:
    """The (review, decline) thresholds: the model's stored ones, each overridable by config.

    Raises:
        ModelLoadError: If the model recorded no thresholds and the config sets none.
    """
    stored = card.thresholds
    review = serving.review_threshold if serving.review_threshold is not None else None
    decline = serving.decline_threshold if serving.decline_threshold is not None else None
    if stored is not None:
        review = stored.review if review is None else review
        decline = stored.decline if decline is None else decline
    if review is None or decline is None:
        raise ModelLoadError(
            f"{card.uri} has no stored decision thresholds: set "
            "FRAUDRISK_SERVING__REVIEW_THRESHOLD and FRAUDRISK_SERVING__DECLINE_THRESHOLD"
        )
    return float(review), float(decline)


def decide(risk: npt.NDArray[np.float64], review: float, decline: float) -> npt.NDArray[np.str_]:
    """Approve, review or decline each score (``>=`` thresholds; decline wins)."""
    out = np.full(risk.shape, APPROVE, dtype="<U7")
    out[risk >= review] = REVIEW
    out[risk >= decline] = DECLINE
    return out


def reason_codes(
    contributions: npt.NDArray[np.float64],
    matrix: npt.NDArray[np.float32],
    names: Sequence[str],
    top: int,
) -> list[str]:
    """JSON per row: the ``top`` features pushing the score up, largest first.

    Args:
        contributions: SHAP values, shape (n, k + 1) (last column = bias).
        matrix: The feature values, shape (n, k).
        names: Feature names of the columns.
        top: How many reasons per row (only positive contributions are reasons).

    Returns:
        One JSON array per row of ``{"feature", "value", "contribution"}`` objects.
    """
    per_feature = contributions[:, : len(names)]
    order = np.argsort(-per_feature, axis=1)[:, :top]
    rows = []
    for row, columns in enumerate(order.tolist()):
        reasons = [
            {
                "feature": names[c],
                "value": round(float(matrix[row, c]), 6),
                "contribution": round(float(per_feature[row, c]), 6),
            }
            for c in columns
            if per_feature[row, c] > 0
        ]
        rows.append(json.dumps(reasons, separators=(",", ":")))
    return rows


def fallback_decisions(
    amounts: npt.NDArray[np.float64],
    tx_last_hour: npt.NDArray[np.float64] | None,
    rules: FallbackRules,
) -> tuple[npt.NDArray[np.str_], list[str]]:
    """Rules-only decisions and their reasons when no model score can be had.

    Args:
        amounts: Transaction amounts.
        tx_last_hour: The customer's transactions in the last hour (this one included), or
            None when the online state could not be read either.
        rules: The configured amount and velocity rules.

    Returns:
        The decisions and a JSON array of the rules that fired, per row.
    """
    decisions = np.full(amounts.shape, APPROVE, dtype="<U7")
    fired: list[list[dict[str, object]]] = [[] for _ in range(len(amounts))]
    checks = [
        (amounts >= rules.review_amount, REVIEW, "amount_at_least", rules.review_amount),
        (amounts >= rules.decline_amount, DECLINE, "amount_at_least", rules.decline_amount),
    ]
    if tx_last_hour is not None:
        velocity = tx_last_hour >= rules.review_tx_per_hour
        checks.insert(1, (velocity, REVIEW, "tx_last_hour_at_least", rules.review_tx_per_hour))
    for hit, decision, rule, limit in checks:
        for row in np.flatnonzero(hit).tolist():
            if decision == DECLINE or decisions[row] == APPROVE:
                decisions[row] = decision
            fired[row].append({"rule": rule, "limit": limit})
    return decisions, [json.dumps(r, separators=(",", ":")) for r in fired]
