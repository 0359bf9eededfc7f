"""Every manifest under manifests/ is valid against the KServe CRDs, file by file.

Their rendering by real kustomize: ``tests/integration/release/test_kustomize.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from fraudrisk.release import crd
from fraudrisk.serving import manifest

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "manifests"
LOCAL_FILE = MANIFESTS / "local" / "inferenceservice.yaml"
KUSTOMIZATIONS = sorted(p.parent for p in MANIFESTS.rglob("kustomization.yaml"))
RESOURCE_FILES = sorted(p for p in MANIFESTS.rglob("*.yaml") if p.name != "kustomization.yaml")
KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "components",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "labels",
    "commonLabels",
    "commonAnnotations",
    "images",
    "replicas",
    "patches",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "configurations",
    "replacements",
    "crds",
    "openapi",
    "sortOptions",
    "buildMetadata",
}


def _rel(path: Path) -> str:
    return str(path.relative_to(MANIFESTS))


def _docs(text: str) -> list[dict[str, object]]:
    return [d for d in YAML(typ="safe").load_all(text) if d is not None]


def test_the_tree_is_there() -> None:
    assert {_rel(k) for k in KUSTOMIZATIONS} == {
        "base",
        "overlays/local",
        "overlays/staging",
        "overlays/production",
        "alternatives/inferencegraph-ab",
    }
    assert LOCAL_FILE in RESOURCE_FILES


@pytest.mark.parametrize("path", RESOURCE_FILES, ids=_rel)
def test_every_file_validates(path: Path) -> None:
    # Patch files too: a misspelt field in a patch would be merged silently by kustomize.
    assert crd.validate_text(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_rel)
def test_kustomization_shape(directory: Path) -> None:
    (doc,) = _docs((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    assert doc["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert doc["kind"] == "Kustomization"
    assert set(doc) <= KUSTOMIZATION_KEYS, set(doc) - KUSTOMIZATION_KEYS
    for entry in doc.get("resources", []):  # type: ignore[attr-defined]
        assert (directory / entry).exists(), entry
    for patch in doc.get("patches", []):  # type: ignore[attr-defined]
        assert "path" in patch or "patch" in patch
        assert "path" not in patch or (directory / patch["path"]).is_file()


# ------------------------------------------------------------------ negative controls


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    minReplicas: 1",
            "    minReplicas: 1\n    canaryTrafficPercent: ten",
            "spec.predictor.canaryTrafficPercent: 'ten' is not of type 'integer'",
        ),
        (
            "    minReplicas: 1",
            "    minReplicas: 1\n    canaryTraficPercent: 10",
            "spec.predictor: unknown field(s) canaryTraficPercent",
        ),
        (
            "      runtime: fraudrisk-scorer",
            "      runtime: fraudrisk-scorer\n      storageURI: s3://x",
            "spec.predictor.model: unknown field(s) storageURI",
        ),
        (
            '    prometheus.kserve.io/port: "8080"',
            "    prometheus.kserve.io/port: 8080",
            "8080 is not of type 'string'",
        ),
        (
            "      periodSeconds: 5",
            "      periodSeconds: 5\n      httpPath: /ready",
            "readinessProbe: unknown field(s) httpPath",
        ),
        (
            '  FRAUDRISK_SERVING__HTTP_PORT: "8080"',
            "  FRAUDRISK_SERVING__HTTP_PORT: 8080",
            "ConfigMap/fraudrisk-serving-settings: data.FRAUDRISK_SERVING__HTTP_PORT",
        ),
    ],
)
def test_a_broken_copy_is_rejected(old: str, new: str, expected: str) -> None:
    text = LOCAL_FILE.read_text(encoding="utf-8")
    assert old in text and "canaryTrafficPercent" not in text
    errors = crd.validate_text(text.replace(old, new, 1))
    assert any(expected in e for e in errors), errors
    # the invalid value is also refused by the plan loader when it is the percent
    if "ten" in new:
        with pytest.raises(manifest.ManifestError, match="canaryTrafficPercent"):
            manifest.plan_from_text(text.replace(old, new, 1))


# ------------------------------------------------------------------ the kustomize installer
