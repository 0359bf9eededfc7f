"""Pydantic model of the monitoring pipeline's run configuration (``configs/monitoring.yaml``)."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fraudrisk.vocab import CHAMPION_URI

#: The run configurations, package data of ``fraudrisk.pipelines`` (this folder's ``configs/``).
CONFIGS = Path(str(resources.files("fraudrisk.pipelines") / "configs"))


class MonitoringPipelineConfig(BaseModel):
    """Arguments of ``monitoring_pipeline``; thresholds and cool-down are platform settings."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model_uri: str = Field(CHAMPION_URI, min_length=1, description="The monitored model.")
    """The monitored model (``models:/<name>@<alias>``, a version, or a storage URI)."""
    source: Literal["lake", "scores"] = Field("lake", description="Rows of the windows.")
    """``lake`` (the feature table, scored now) or ``scores`` (the score store)."""
    window_days: int = Field(7, ge=1, description="Days of the drift and labelled windows.")
    """Days of the drift window and of the labelled window."""
    end: str = Field("", description="Last day checked, YYYY-MM-DD (empty = the latest day).")
    """Last day checked, ``YYYY-MM-DD``; empty = the latest day of the source at run time."""
    kfp_host: str = Field("", description="KFP host of the training run (empty = KFP_HOST).")
    """KFP endpoint a triggered training run is submitted to; empty = ``KFP_HOST`` or local."""
    metrics_dir: str = Field("", description="Prometheus textfile folder (empty = HOME).")
    """Folder of the steps' Prometheus textfiles; empty = HOME/monitoring/metrics."""

    @field_validator("end")
    @classmethod
    def _a_date_or_empty(cls, end: str) -> str:
        if end:
            dt.date.fromisoformat(end)  # ValueError names the field
        return end

    @classmethod
    def from_yaml(cls, path: Path | str = CONFIGS / "monitoring.yaml") -> MonitoringPipelineConfig:
        """Load and validate a YAML run configuration.

        Raises:
            pydantic.ValidationError: Naming each invalid field.
        """
        return cls.model_validate(yaml.safe_load(Path(path).read_text()) or {})

    def arguments(self) -> dict[str, Any]:
        """The pipeline arguments."""
        return self.model_dump(mode="json")
