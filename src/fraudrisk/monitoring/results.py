"""The results the monitoring parts exchange: a drift check and a labelled-performance check.

Both are plain pydantic models so the watcher, the KFP monitoring pipeline and ``--json`` output
share one shape. A check *triggers* retraining when its ``triggered`` property is true.

A drift result carries two verdicts on the inputs: ``columns`` (the share of the model's
features that drifted) and ``weighted`` (the share of the model's importance — mean |SHAP| over
its reference — held by the drifted features); ``drift_detected`` follows ``drift_verdict``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

Source = Literal["lake", "scores"]
#: What dataset drift means: the drifted features' share of the importance, or of the columns.
DriftVerdict = Literal["weighted", "columns"]


class DriftResult(BaseModel):
    """One Evidently drift report of a window against a model's reference."""

    model_uri: str = Field(description="The model whose reference the window was compared with.")
    model_version: str = Field(description="Its registry version (or the storage URI).")
    source: Source = Field(description="Where the window's rows came from.")
    start: dt.date = Field(description="First day of the window.")
    end: dt.date = Field(description="Last day of the window (inclusive).")
    rows: int = Field(description="Rows of the window.")
    sampled_rows: int = Field(description="Rows the report was computed on (≤ rows).")
    drift_detected: bool = Field(
        description="Dataset drift by the verdict drift_verdict names (its share ≥ its threshold)."
    )
    drift_share: float = Field(description="Share of the model's features that drifted.")
    drifted_features: list[str] = Field(description="Names of the drifted features.")
    drift_verdict: DriftVerdict = Field(
        "columns",
        description="The verdict drift_detected follows: weighted (weighted_drift_share) or "
        "columns (drift_share).",
    )
    weighted_drift_share: float | None = Field(
        None,
        description="Share of the model's importance (mean |SHAP| over its reference) held by "
        "the drifted features; None when the model gives no per-feature contributions.",
    )
    verdicts: dict[str, bool] = Field(
        default_factory=dict,
        description="Each verdict's answer: columns, and weighted when the model has weights.",
    )
    feature_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Feature → its share of the model's importance (sums to 1).",
    )
    feature_scores: dict[str, float] = Field(
        default_factory=dict, description="Per-feature drift score (the method's statistic)."
    )
    score_drift: float | None = Field(None, description="PSI of the risk-score distribution.")
    score_drift_detected: bool = Field(False, description="Score PSI above its threshold.")
    quality_issues: dict[str, int] = Field(
        default_factory=dict, description="Missing / out-of-range / new-category counts."
    )
    report: str = Field(description="Path of the HTML report.")
    report_json: str = Field(description="Path of the JSON report.")

    @property
    def triggered(self) -> bool:
        """True when inputs or scores drifted beyond their thresholds."""
        return self.drift_detected or self.score_drift_detected

    def summary(self) -> dict[str, object]:
        """The ``--json`` shape: the four fields the issue names, the rest, the weight table."""
        head = {
            "drift_detected": self.drift_detected,
            "drift_share": self.drift_share,
            "drifted_features": self.drifted_features,
            "report": self.report,
        }
        rest = self.model_dump(mode="json", exclude=set(head))
        return head | rest | {"weight_table": self.weight_table()}

    def weight_table(self) -> list[dict[str, object]]:
        """One row per feature — weight, drifted, drift score — heaviest first.

        Without weights (a model without per-feature contributions) the rows carry no weight
        and come by drift score.
        """
        order = self.feature_weights or self.feature_scores
        drifted = set(self.drifted_features)
        return [
            {
                "feature": name,
                "weight": self.feature_weights.get(name),
                "drifted": name in drifted,
                "score": self.feature_scores.get(name),
            }
            for name in sorted(order, key=lambda name: -order[name])
        ]


class DayPerformance(BaseModel):
    """Labelled performance of one variant on one day."""

    day: dt.date
    variant: str
    model_version: str
    transactions: int
    frauds: int
    average_precision: float | None
    card_precision_at_k: float | None
    recall_at_budget: float | None


class CalibrationBin(BaseModel):
    """One bin of the reliability curve: scores in ``[lower, upper]``, mean risk, fraud rate."""

    lower: float
    upper: float
    count: int
    mean_risk: float
    fraud_rate: float


class PerformanceResult(BaseModel):
    """Delayed-label performance over a labelled window, per day and variant."""

    model_uri: str
    model_version: str
    start: dt.date
    end: dt.date = Field(description="Last labelled day (end minus the label delay at most).")
    days: list[DayPerformance]
    average_precision: float | None = Field(description="Champion's AP over the window.")
    expected_average_precision: float | None = Field(
        description="The model's own test-fold AP, the yardstick of a drop."
    )
    drop: float | None = Field(description="Relative AP drop versus the yardstick (≥ 0 = worse).")
    drop_detected: bool = Field(description="Drop beyond the configured tolerance.")
    calibration_error: float | None = Field(
        None, description="Expected calibration error of the model over the window (ECE)."
    )
    relative_calibration_error: float | None = Field(
        None, description="The ECE as a share of the window's fraud rate."
    )
    calibration_drift_detected: bool = Field(
        False, description="Relative ECE beyond monitoring.max_relative_calibration_error."
    )
    reliability: list[CalibrationBin] = Field(
        default_factory=list, description="The reliability curve (10 quantile bins)."
    )
    labels: dict[str, int] = Field(
        default_factory=dict,
        description="Labelled transactions of the window by the label's source (lake, "
        "analyst, chargeback, topic).",
    )

    @property
    def triggered(self) -> bool:
        """True when labelled performance fell beyond tolerance."""
        return self.drop_detected
