"""The results the monitoring parts exchange: a drift check and a labelled-performance check.

Both are plain pydantic models so the watcher, the KFP monitoring pipeline and ``--json`` output
share one shape. A check *triggers* retraining when its ``triggered`` property is true.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

Source = Literal["lake", "scores"]


class DriftResult(BaseModel):
    """One Evidently drift report of a window against a model's reference."""

    model_uri: str = Field(description="The model whose reference the window was compared with.")
    model_version: str = Field(description="Its registry version (or the storage URI).")
    source: Source = Field(description="Where the window's rows came from.")
    start: dt.date = Field(description="First day of the window.")
    end: dt.date = Field(description="Last day of the window (inclusive).")
    rows: int = Field(description="Rows of the window.")
    sampled_rows: int = Field(description="Rows the report was computed on (≤ rows).")
    drift_detected: bool = Field(description="Dataset drift: drift_share ≥ the configured share.")
    drift_share: float = Field(description="Share of the model's features that drifted.")
    drifted_features: list[str] = Field(description="Names of the drifted features.")
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
        """The ``--json`` shape: the four fields the issue names, then the rest."""
        head = {
            "drift_detected": self.drift_detected,
            "drift_share": self.drift_share,
            "drifted_features": self.drifted_features,
            "report": self.report,
        }
        return head | self.model_dump(mode="json", exclude=set(head))


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

    @property
    def triggered(self) -> bool:
        """True when labelled performance fell beyond tolerance."""
        return self.drop_detected
