"""Every kustomization under manifests/ renders, by real kustomize, to valid KServe manifests.

kustomize is built once from the Go module proxy into ``$FRAUDRISK_HOME/bin`` (about a minute on
a fresh machine) by :func:`fraudrisk.release.kustomize.ensure_kustomize`; the installer's tests
run fake ``kustomize`` scripts.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from tests.unit.release.test_manifests_valid import (
    KUSTOMIZATIONS,
    LOCAL_FILE,
    MANIFESTS,
    _docs,
    _rel,
)

from fraudrisk.release import crd, kustomize
from fraudrisk.serving import manifest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def kustomize_bin() -> Path:
    return kustomize.ensure_kustomize()


@pytest.fixture(scope="session")
def rendered(kustomize_bin: Path) -> dict[str, str]:
    return {_rel(k): kustomize.build(k, kustomize_bin) for k in KUSTOMIZATIONS}


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_rel)
def test_every_rendering_validates(directory: Path, rendered: dict[str, str]) -> None:
    text = rendered[_rel(directory)]
    assert crd.validate_text(text) == []
    kinds = [d["kind"] for d in _docs(text)]
    assert kinds.count("InferenceService") >= 1
    assert all(
        d["metadata"]["namespace"] == "fraudrisk"  # type: ignore[index]
        for d in _docs(text)
        if d["kind"] != "Namespace"
    )


def test_overlays_say_what_each_environment_serves(rendered: dict[str, str]) -> None:
    local = manifest.plan_from_text(rendered["overlays/local"])
    assert local.routes[0].model_uri == "models:/fraud-risk@champion"
    assert "FRAUDRISK_MLFLOW__TRACKING_URI" not in local.env  # sqlite under FRAUDRISK_HOME
    staging = manifest.plan_from_text(rendered["overlays/staging"])
    assert [(r.model_uri, r.percent) for r in staging.routes] == [
        ("models:/fraud-risk@champion", 90),
        ("models:/fraud-risk@challenger", 10),
    ]
    production = manifest.plan_from_text(rendered["overlays/production"])
    assert production.canary_percent is None and len(production.routes) == 1
    assert production.env["FRAUDRISK_FEAST__ONLINE_STORE"] == "redis"
    isvc = next(
        d for d in _docs(rendered["overlays/production"]) if d["kind"] == "InferenceService"
    )
    predictor = isvc["spec"]["predictor"]  # type: ignore[index]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (3, 20)
    env_names = [e["name"] for e in predictor["model"]["env"]]
    assert env_names == [manifest.MODEL_URI_ENV, "FRAUDRISK_FEAST__REDIS_CONNECTION_STRING"]


def test_runtime_probe_and_image(rendered: dict[str, str]) -> None:
    runtime = next(d for d in _docs(rendered["base"]) if d["kind"] == "ServingRuntime")
    (container,) = runtime["spec"]["containers"]  # type: ignore[index]
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/v2/models/fraud-risk/ready",
        "port": 8080,
    }
    assert container["image"].startswith("ghcr.io/fraudrisk/scorer:")
    assert [*container["command"], *container["args"]] == [
        "python",
        "-m",
        "serving",
        "--model_name",
        "fraud-risk",
        "--http_port",
        "8080",
    ]
    formats = runtime["spec"]["supportedModelFormats"]  # type: ignore[index]
    assert formats == [{"name": "fraudrisk", "version": "1", "autoSelect": True}]


def test_local_file_is_the_rendered_local_overlay(rendered: dict[str, str]) -> None:
    committed = LOCAL_FILE.read_text(encoding="utf-8")
    assert committed.startswith(kustomize.rendered_header(Path("manifests/overlays/local")))
    assert _docs(committed) == _docs(rendered["overlays/local"]), (
        "manifests/local/inferenceservice.yaml is stale (or was edited in place): regenerate with "
        "python -m fraudrisk.release.kustomize manifests/overlays/local "
        "-o manifests/local/inferenceservice.yaml"
    )
    manifest.load_plan(LOCAL_FILE)


def test_a_broken_overlay_fails_to_render(tmp_path: Path, kustomize_bin: Path) -> None:
    shutil.copytree(MANIFESTS, tmp_path / "manifests")
    overlay = tmp_path / "manifests" / "overlays" / "production" / "kustomization.yaml"
    text = overlay.read_text(encoding="utf-8")
    overlay.write_text(text.replace("path: /spec/predictor/model/env/-", "path: /spec/nope/env/-"))
    with pytest.raises(kustomize.KustomizeError, match="kustomize build"):
        kustomize.build(overlay.parent, kustomize_bin)


def _fake_kustomize(path: Path, version: str) -> None:
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_cached_kustomize_is_used_without_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_kustomize(tmp_path / "kustomize", kustomize.KUSTOMIZE_VERSION)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no go here
    monkeypatch.setenv(kustomize.BIN_DIR_ENV, str(tmp_path))
    assert kustomize.ensure_kustomize() == tmp_path / "kustomize"


def test_wrong_version_needs_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_kustomize(tmp_path / "kustomize", "v5.0.0")
    assert kustomize.installed_version(tmp_path / "kustomize") == "v5.0.0"
    assert kustomize.installed_version(tmp_path / "absent") is None
    monkeypatch.setenv("PATH", str(tmp_path))  # only the stale binary, no go
    with pytest.raises(kustomize.KustomizeError, match="go not found"):
        kustomize.ensure_kustomize(tmp_path)


def test_render_command_writes_the_header(tmp_path: Path, kustomize_bin: Path) -> None:
    out = tmp_path / "local.yaml"
    assert kustomize.main([str(MANIFESTS / "overlays" / "local"), "-o", str(out)]) == 0
    assert _docs(out.read_text()) == _docs(LOCAL_FILE.read_text())
