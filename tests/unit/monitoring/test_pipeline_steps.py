"""The monitoring pipeline compiles with gated triggers; its config validates; a step runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from tests.unit.monitoring.test_trigger import drift
from typer.testing import CliRunner

from fraudrisk.cli.main import app
from fraudrisk.config import get_settings
from fraudrisk.monitoring.ledger import FIRED, NO_TRIGGER, TriggerLedger
from fraudrisk.training import launch
from fraudrisk.training.pipelines import load_config, load_pipeline_module


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FRAUDRISK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KFP_HOST", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def compiled(tmp_path: Path) -> dict[str, Any]:
    out = load_pipeline_module("monitoring").compile_pipeline(tmp_path / "monitoring.yaml")
    spec: dict[str, Any] = yaml.safe_load(out.read_text())
    return spec


def test_the_triggers_run_only_when_their_check_triggered(tmp_path: Path) -> None:
    spec = compiled(tmp_path)
    assert spec["pipelineInfo"]["name"] == "monitoring"
    root = spec["root"]["dag"]["tasks"]
    assert {"check-drift", "check-performance"} <= set(root)
    branches = {name: task for name, task in root.items() if "triggerPolicy" in task}
    conditions = {}
    for task in branches.values():
        (inner,) = spec["components"][task["componentRef"]["name"]]["dag"]["tasks"].values()
        assert inner["componentRef"]["name"].startswith("comp-trigger-retraining")
        check = inner["inputs"]["parameters"]["check"]["runtimeValue"]["constant"]
        conditions[check] = task["triggerPolicy"]["condition"]
        assert inner["cachingOptions"].get("enableCache", False) is False
    assert set(conditions) == {"drift", "performance"}
    assert "check-drift-triggered" in conditions["drift"]
    assert "check-performance-triggered" in conditions["performance"]
    for name in ("check-drift", "check-performance"):  # scheduled runs must see new data
        assert root[name]["cachingOptions"].get("enableCache", False) is False
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    from fraudrisk.components import FRAUDRISK_IMAGE

    assert images == {FRAUDRISK_IMAGE}


def test_the_default_config_validates_and_matches_the_pipeline_parameters(tmp_path: Path) -> None:
    arguments = load_config("monitoring", None).arguments()
    parameters = compiled(tmp_path)["root"]["inputDefinitions"]["parameters"]
    assert set(arguments) == set(parameters)
    assert arguments["model_uri"] == "models:/fraud-risk@champion"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("end: yesterday\n", "end"),
        ("window_days: 0\n", "window_days"),
        ("source: kafka\n", "source"),
        ("windows: 7\n", "windows"),
    ],
)
def test_a_bad_config_field_is_named(tmp_path: Path, text: str, field: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ValidationError, match=field):
        load_config("monitoring", bad)


def test_fraudrisk_pipeline_compile_monitoring(tmp_path: Path) -> None:
    out = tmp_path / "build" / "monitoring.yaml"
    result = CliRunner().invoke(app, ["pipeline", "compile", "monitoring", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text())["pipelineInfo"]["name"] == "monitoring"


def test_trigger_retraining_component_records_and_fires(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_pipeline_module("monitoring")
    from fraudrisk.components.trigger_retraining import trigger_retraining

    launched: list[Any] = []

    def launch_training(config: Any, **_: Any) -> launch.LaunchResult:
        launched.append(config)  # the pipeline's gate rejected it: no version to tag
        return launch.LaunchResult(where="local", state="SUCCEEDED", version=None, seconds=1.0)

    monkeypatch.setattr(launch, "launch_training", launch_training)
    outcomes = []
    for drifted in (False, True):
        result = tmp_path / f"drift-{drifted}.json"
        result.write_text(drift(drifted).model_dump_json())
        outcome, version = trigger_retraining.python_func(
            check="drift", result=SimpleNamespace(path=str(result)), metrics_dir=str(tmp_path)
        )
        outcomes.append((outcome, version))
    assert outcomes == [(NO_TRIGGER, ""), (FIRED, "")]
    assert len(launched) == 1 and launched[0].bootstrap is False
    ledger = TriggerLedger(get_settings().db_url)
    assert [d.report for d in ledger.decisions()] == ["/reports/drift.html"] * 2
    ledger.close()
    text = (tmp_path / "trigger_retraining_drift.prom").read_text()
    families = text_string_to_metric_families(text)
    samples = {(s.name, s.labels.get("outcome")): s.value for f in families for s in f.samples}
    assert samples[("fraudrisk_retraining_triggers_total", FIRED)] == 1


def test_a_check_step_refuses_a_bad_end_date(home: Path, tmp_path: Path) -> None:
    load_pipeline_module("monitoring")
    from fraudrisk.components.check_performance import check_performance

    from fraudrisk.errors import MonitoringError

    with pytest.raises(MonitoringError, match="not a date"):
        check_performance.python_func(
            result=SimpleNamespace(path=str(tmp_path / "r.json")),
            metrics=SimpleNamespace(log_metric=lambda *_: None),
            end="31/08/2018",
        )
