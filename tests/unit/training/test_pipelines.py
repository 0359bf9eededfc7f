"""The Kubeflow pipelines compile, their configs validate, and the gate component runs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pydantic import ValidationError

from fraudrisk.config import get_settings
from fraudrisk.training.pipelines import PIPELINES, load_config, load_pipeline_module

COMPONENTS = {
    "build-dataset",
    "tune",
    "train",
    "calibrate",
    "evaluate",
    "validate",
    "register",
}


@pytest.mark.parametrize("name", PIPELINES)
def test_every_pipeline_compiles(name: str, tmp_path: Path) -> None:
    out = load_pipeline_module(name).compile_pipeline(tmp_path / f"{name}.yaml")
    spec = yaml.safe_load(out.read_text())
    assert spec["pipelineInfo"]["name"] == name


def test_training_pipeline_ir_has_the_seven_components_and_a_gated_register(
    tmp_path: Path,
) -> None:
    out = load_pipeline_module("training").compile_pipeline(tmp_path / "training.yaml")
    spec = yaml.safe_load(out.read_text())
    assert {f"comp-{name}" for name in COMPONENTS} <= set(spec["components"])
    root = spec["root"]["dag"]["tasks"]
    assert COMPONENTS - {"register"} <= set(root)
    assert "register" not in root
    condition = next(t for t in root.values() if "triggerPolicy" in t)
    assert "validate-Output" in condition["triggerPolicy"]["condition"]
    branch = spec["components"][condition["componentRef"]["name"]]
    assert set(branch["dag"]["tasks"]) == {"register"}
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    from fraudrisk.components import FRAUDRISK_IMAGE

    assert images == {FRAUDRISK_IMAGE}


def test_default_config_validates() -> None:
    config = load_config("training", None)
    assert config.n_trials >= 1
    arguments = config.arguments()
    assert arguments["table_uri"] == str(get_settings().home / "features")
    assert set(arguments["gate"]) >= {"min_average_precision", "max_regression"}


def test_bad_config_field_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_trials: many\nwindow_days: 14\n")
    with pytest.raises(ValidationError, match="n_trials"):
        load_config("training", bad)
    bad.write_text("n_trails: 3\n")
    with pytest.raises(ValidationError, match="n_trails"):
        load_config("training", bad)


def test_validate_component_gates_a_tiny_metrics_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_pipeline_module("training")
    from fraudrisk.components.validate import validate

    monkeypatch.setenv("FRAUDRISK_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    means = {"auc_roc": 0.9, "average_precision": 0.7, "card_precision_at_100": 0.3}
    metrics = {
        "test_folds": {"mean": means, "std": dict.fromkeys(means, 0.01)},
        "baseline": means,
        "scenario_recall": {"all": 0.5},
        "holdout": {"average_precision": 0.7, "brier": 0.01},
    }
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text(json.dumps(metrics))
    try:
        for floor, expected in ((0.5, True), (0.8, False)):
            verdict = tmp_path / f"gate-{floor}.json"
            result = validate.python_func(  # no champion: the candidate's files are not read
                dataset=SimpleNamespace(path=str(tmp_path / "dataset")),
                recipe=SimpleNamespace(path=str(tmp_path / "recipe.json")),
                calibrated_model=SimpleNamespace(path=str(tmp_path / "model.pkl")),
                evaluation=SimpleNamespace(path=str(evaluation)),
                gate_result=SimpleNamespace(path=str(verdict)),
                gate={"min_average_precision": floor},
            )
            assert result is expected
            assert json.loads(verdict.read_text())["passed"] is expected
    finally:
        get_settings.cache_clear()
