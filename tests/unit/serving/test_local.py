"""The local InferenceService runner: plans become specs, manifest edits reconfigure the model."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from tests.unit.scoring.served import Served

from fraudrisk.release.manifest_edits import promote, rollback, set_canary
from fraudrisk.serving.kserve_model import FraudRiskModel
from fraudrisk.serving.local import ManifestWatcher, apply_env, spec_from_plan
from fraudrisk.serving.manifest import load_plan
from fraudrisk.serving.prometheus import scorer_metrics

LOCAL = Path(__file__).resolve().parents[3] / "manifests" / "local" / "inferenceservice.yaml"


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    copy = tmp_path / "isvc.yaml"
    copy.write_text(LOCAL.read_text())
    return copy


def test_the_committed_local_manifest_serves_the_champion_alone(manifest: Path) -> None:
    spec = spec_from_plan(load_plan(manifest))
    assert spec.stable_uri == "models:/fraud-risk@champion" and spec.candidate_uri is None
    assert spec.name == "fraud-risk"


@pytest.mark.parametrize(("mode", "percent"), [("canary", 20), ("ab", 50), ("shadow", 0)])
def test_a_canary_manifest_becomes_a_split(manifest: Path, mode: str, percent: int) -> None:
    manifest.write_text(
        set_canary(manifest.read_text(), "models:/fraud-risk/2", percent, mode=mode)
    )  # type: ignore[arg-type]
    spec = spec_from_plan(load_plan(manifest))
    assert (spec.stable_uri, spec.candidate_uri) == (
        "models:/fraud-risk@champion",
        "models:/fraud-risk/2",
    )
    assert spec.split.mode == mode and spec.split.percent == percent


def test_manifest_edits_reconfigure_the_running_model(served: Served, manifest: Path) -> None:
    model = FraudRiskModel(
        spec_from_plan(load_plan(manifest)),
        served.settings,
        states=lambda _s: served.states,
        metrics=scorer_metrics(CollectorRegistry()),
    )
    assert model.load() and model.versions() == ["1"]
    watcher = ManifestWatcher(manifest, model)
    assert not watcher.check()  # unchanged
    manifest.write_text(set_canary(manifest.read_text(), "models:/fraud-risk/2", 30))
    assert watcher.check() and model.versions() == ["1", "2"]
    before = manifest.read_text()
    manifest.write_text(before.replace("canaryTrafficPercent: 30", "canaryTrafficPercent: 300"))
    assert not watcher.check() and model.versions() == ["1", "2"]  # unusable: old split serves
    manifest.write_text(promote(before))
    assert watcher.check() and model.versions() == ["2"]
    manifest.write_text(set_canary(manifest.read_text(), "models:/fraud-risk/1", 10))
    assert watcher.check() and model.versions() == ["2", "1"]
    manifest.write_text(rollback(manifest.read_text()))
    assert watcher.check() and model.versions() == ["2"]


def test_manifest_settings_never_override_the_shell(
    manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = load_plan(manifest)
    name = next(iter(plan.env))
    monkeypatch.setenv(name, "from-shell")
    others = [n for n in plan.env if n != name]
    for other in others:
        monkeypatch.delenv(other, raising=False)
    assert apply_env(plan) == others
    import os

    assert os.environ[name] == "from-shell"
