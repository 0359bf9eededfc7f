"""The validation gate a candidate model passes before it may get an alias in the registry.

Two kinds of checks, every failure reported with its numbers: absolute floors on the test
metrics (a model below them is useless whatever the champion does), and no regression against
the current champion beyond a tolerance per metric. A candidate that fails is recorded as
rejected by the registry and never gets an alias.

The regression checks compare like with like when they can: the candidate and the champion
scored on the same rows, the candidate's hold-out (:class:`HeadToHead`, built by
:mod:`fraudrisk.training.head_to_head`). Each model's recorded test-fold metrics come from its
own periods; after the world changed they say little about which model fits it now, so they
are only the fallback (no champion model to load, or one trained on the hold-out days).

Metric names are those of :mod:`fraudrisk.training.metrics`; ``card_precision@100`` and the
MLflow-safe ``card_precision_at_100`` are the same metric.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from fraudrisk.registry.mlflow_io import normalise_metric_name

AP = "average_precision"
AUC = "auc_roc"
CP100 = "card_precision_at_100"


class GateConfig(BaseModel):
    """Floors and regression tolerances of the validation gate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_average_precision: float = Field(0.6, ge=0, le=1, description="Floor on test AP.")
    min_auc_roc: float = Field(0.85, ge=0, le=1, description="Floor on test AUC ROC.")
    min_card_precision_at_100: float = Field(
        0.25, ge=0, le=1, description="Floor on test Card Precision@100."
    )
    max_regression: dict[str, float] = Field(
        default_factory=lambda: {AP: 0.01},
        description="Per metric, the most the candidate may fall below the champion "
        "(absolute); metrics not listed are not compared.",
    )


class HeadToHead(BaseModel):
    """The candidate and the champion scored on the same rows: the candidate's hold-out."""

    model_config = ConfigDict(extra="forbid")

    period: str = Field(description="The hold-out days, ``start..end`` (end exclusive).")
    transactions: int = Field(ge=0, description="Transactions scored by both models.")
    frauds: int = Field(ge=0, description="Frauds among them.")
    champion_version: str = Field(description="The champion's registered version.")
    candidate: dict[str, float] = Field(description="The candidate's metrics on those rows.")
    champion: dict[str, float] = Field(description="The champion's metrics on the same rows.")

    def describe(self) -> str:
        """One line: what was compared."""
        return (
            f"head-to-head with champion v{self.champion_version} on the hold-out "
            f"{self.period} ({self.transactions:,} transactions, {self.frauds:,} frauds)"
        )


class GateResult(BaseModel):
    """The verdict of the gate."""

    model_config = ConfigDict(extra="forbid")

    passed: bool = Field(description="True when every check passed.")
    reasons: list[str] = Field(
        default_factory=list, description="One line per failing check, with its numbers."
    )
    compared_to_champion: bool = Field(False, description="Whether a champion was compared.")
    comparison: str = Field("", description="What the regression checks compared, and why.")
    head_to_head: HeadToHead | None = Field(
        None, description="Both models on the same hold-out rows, when that was possible."
    )


def gate(
    candidate_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    config: GateConfig | None = None,
    head_to_head: HeadToHead | None = None,
    fallback_reason: str = "",
) -> GateResult:
    """Check a candidate's test metrics against the floors and the champion.

    Args:
        candidate_metrics: The candidate's test metrics (``auc_roc``, ``average_precision``,
            ``card_precision@100`` or ``card_precision_at_100``; others are ignored).
        champion_metrics: The current champion's recorded metrics, or None when there is no
            champion (only the floors are checked).
        config: Floors and tolerances; defaults to :class:`GateConfig` ().
        head_to_head: Both models on the same rows; when given, the regression checks
            compare these instead of the recorded metrics.
        fallback_reason: Why there is no head-to-head (said in ``comparison``).

    Returns:
        Passed or not, with every failing check listed and what was compared.
    """
    config = config or GateConfig()
    candidate = _normalised(candidate_metrics)
    floors = {
        AP: config.min_average_precision,
        AUC: config.min_auc_roc,
        CP100: config.min_card_precision_at_100,
    }
    reasons = [_floor_failure(name, candidate.get(name), floor) for name, floor in floors.items()]
    compared, comparison = _compared(candidate, champion_metrics, head_to_head, fallback_reason)
    if compared is not None:
        tolerances = _normalised(config.max_regression)
        reasons += [
            _regression_failure(name, compared[0].get(name), compared[1].get(name), tolerance)
            for name, tolerance in tolerances.items()
        ]
    failures = [reason for reason in reasons if reason]
    return GateResult(
        passed=not failures,
        reasons=failures,
        compared_to_champion=compared is not None,
        comparison=comparison,
        head_to_head=head_to_head,
    )


def _compared(
    candidate: dict[str, float],
    champion_metrics: Mapping[str, float] | None,
    head_to_head: HeadToHead | None,
    fallback_reason: str,
) -> tuple[tuple[dict[str, float], dict[str, float]] | None, str]:
    """The (candidate, champion) metrics the regression checks compare, and what they are."""
    if head_to_head is not None:
        pair = (_normalised(head_to_head.candidate), _normalised(head_to_head.champion))
        return pair, head_to_head.describe()
    if champion_metrics is None:
        return None, "no champion: floors only"
    why = f" ({fallback_reason})" if fallback_reason else ""
    return (candidate, _normalised(champion_metrics)), f"recorded test-fold metrics{why}"


def _normalised(metrics: Mapping[str, float]) -> dict[str, float]:
    return {normalise_metric_name(name): float(value) for name, value in metrics.items()}


def _floor_failure(name: str, value: float | None, floor: float) -> str:
    """An empty string when ``value`` reaches the floor, else the reason."""
    if value is None:
        return f"{name}: missing from the candidate's metrics (floor {floor:.4f})"
    if not value >= floor:  # NaN fails too
        return f"{name}: {value:.4f} is below the floor {floor:.4f}"
    return ""


def _regression_failure(
    name: str, value: float | None, champion: float | None, tolerance: float
) -> str:
    """An empty string when ``value`` is within ``tolerance`` of the champion, else the reason."""
    if champion is None:
        return ""  # the champion never recorded it: nothing to compare against
    if value is None:
        return f"{name}: missing from the candidate's metrics (champion {champion:.4f})"
    if not value >= champion - tolerance:
        return (
            f"{name}: {value:.4f} regresses {champion - value:.4f} below the champion's "
            f"{champion:.4f} (tolerance {tolerance:.4f})"
        )
    return ""
