"""The training pipeline run end to end with kfp.local on a small lake."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.data import PERMISSIVE, build_lake

from fraudrisk.config import get_settings
from fraudrisk.registry import versions as registry
from fraudrisk.registry.mlflow_io import mlflow_client
from fraudrisk.training.pipelines import load_config, run_local

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_local_run_registers_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDRISK_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # kfp.local writes local_outputs/ under the working directory
    get_settings.cache_clear()
    try:
        table_uri, lake_uri = build_lake(tmp_path)
        config = load_config("training", None).model_copy(
            update={
                "table_uri": table_uri,
                "lake_uri": lake_uri,
                "n_trials": 1,
                "window_days": 14,
                "bootstrap": True,
                "storage": "",
            }
        )
        arguments = config.arguments() | {"gate": PERMISSIVE.model_dump()}
        run_local("training", arguments)
        settings = get_settings()
        assert registry.get_alias_version(settings, registry.CHAMPION) == "1"
        assert registry.get_alias_version(settings, registry.CHALLENGER) == "1"
        assert (tmp_path / "home" / "mlflow.db").exists()
        client = mlflow_client(settings)
        run_id = str(client.get_model_version("fraud-risk", "1").run_id)
        plots = {item.path for item in client.list_artifacts(run_id, "plots")}
        assert plots == {
            f"plots/{name}.png"
            for name in ("reliability", "pr_curve", "feature_importance", "shap_summary")
        }
    finally:
        get_settings.cache_clear()
