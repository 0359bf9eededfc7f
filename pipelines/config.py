"""Pydantic models of the pipeline run configurations (``configs/*.yaml``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from fraudrisk.schemas import DecisionCosts
from fraudrisk.training.gate import GateConfig

#: The run configurations, package data of ``fraudrisk.pipelines`` (this folder's ``configs/``).
CONFIGS = Path(str(resources.files("fraudrisk.pipelines") / "configs"))


class TrainingPipelineConfig(BaseModel):
    """Arguments of ``training_pipeline``; an empty URI means the one under FRAUDRISK_HOME."""

    model_config = ConfigDict(extra="forbid", strict=True)

    table_uri: str = Field("", description="Feature table (empty = HOME/features).")
    """Feature table (empty = HOME/features)."""
    lake_uri: str = Field("", description="Lake with labels and amounts (empty = HOME/lake).")
    """Lake with labels and amounts (empty = HOME/lake)."""
    n_trials: int = Field(20, ge=1, description="Optuna trials of this run.")
    """Optuna trials of this run."""
    timeout_s: float = Field(0.0, ge=0, description="Tuning time budget in seconds (0 = none).")
    """Tuning time budget in seconds (0 = none)."""
    window_days: int = Field(56, ge=1, description="Training window of the tuned recipe (days).")
    """Training window of the tuned recipe (days)."""
    model: str = Field("xgboost", description="Model kind tuned (xgboost or a baseline).")
    """Model kind tuned (xgboost or a baseline)."""
    storage: str = Field("", description="Optuna storage URL (empty = the settings' database).")
    """Optuna storage URL (empty = the settings' database)."""
    bootstrap: bool = Field(
        False, description="Make a passing version champion when there is no champion."
    )
    """Make a passing version champion when there is no champion."""
    gate: GateConfig = Field(default_factory=GateConfig, description="Validation gate.")
    """Floors and regression tolerances of the validation gate."""
    costs: DecisionCosts = Field(
        default_factory=DecisionCosts, description="Costs of the decision thresholds."
    )
    """Costs of the cost-based decision thresholds."""

    @classmethod
    def from_yaml(cls, path: Path | str = CONFIGS / "training.yaml") -> TrainingPipelineConfig:
        """Load and validate a YAML run configuration.

        Raises:
            pydantic.ValidationError: Naming each invalid field.
        """
        return cls.model_validate(yaml.safe_load(Path(path).read_text()) or {})

    def arguments(self) -> dict[str, Any]:
        """The pipeline arguments, empty URIs resolved under FRAUDRISK_HOME."""
        from fraudrisk.config import get_settings

        settings = get_settings()
        values = self.model_dump(mode="json", exclude_none=True)  # KFP rejects None
        values["table_uri"] = self.table_uri or settings.feature_table_uri
        values["lake_uri"] = self.lake_uri or settings.lake_uri
        return values
