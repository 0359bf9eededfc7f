"""The validation gate a candidate model passes before it may get an alias in the registry.

Two kinds of checks, every failure reported with its numbers: absolute floors on the test
metrics (a model below them is useless whatever the champion does), and no regression against
the current champion beyond a tolerance per metric. A candidate that fails is recorded as
rejected by the registry and never gets an alias.

Metric names are those of :mod:`fraudrisk.training.metrics`; ``card_precision@100`` and the
MLflow-safe ``card_precision_at_100`` are the same metric.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

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


class GateResult(BaseModel):
    """The verdict of the gate."""

    model_config = ConfigDict(extra="forbid")

    passed: bool = Field(description="True when every check passed.")
    reasons: list[str] = Field(
        default_factory=list, description="One line per failing check, with its numbers."
    )
    compared_to_champion: bool = Field(False, description="Whether a champion was compared.")


def normalise_metric_name(name: str) -> str:
    """The MLflow-safe form of a metric name (``@`` becomes ``_at_``).

    Args:
        name: A metric name, e.g. ``card_precision@100``.

    Returns:
        The name with ``@`` replaced, e.g. ``card_precision_at_100``.
    """
    return name.replace("@", "_at_")


def gate(
    candidate_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    config: GateConfig | None = None,
) -> GateResult:
    """Check a candidate's test metrics against the floors and the champion.

    Args:
        candidate_metrics: The candidate's test metrics (``auc_roc``, ``average_precision``,
            ``card_precision@100`` or ``card_precision_at_100``; others are ignored).
        champion_metrics: The current champion's metrics, or None when there is no champion
            (only the floors are checked).
        config: Floors and tolerances; defaults to :class:`GateConfig` ().

    Returns:
        Passed or not, with every failing check listed.
    """
    config = config or GateConfig()
    candidate = _normalised(candidate_metrics)
    floors = {
        AP: config.min_average_precision,
        AUC: config.min_auc_roc,
        CP100: config.min_card_precision_at_100,
    }
    reasons = [_floor_failure(name, candidate.get(name), floor) for name, floor in floors.items()]
    if champion_metrics is not None:
        champion = _normalised(champion_metrics)
        tolerances = _normalised(config.max_regression)
        reasons += [
            _regression_failure(name, candidate.get(name), champion.get(name), tolerance)
            for name, tolerance in tolerances.items()
        ]
    failures = [reason for reason in reasons if reason]
    return GateResult(
        passed=not failures, reasons=failures, compared_to_champion=champion_metrics is not None
    )


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
