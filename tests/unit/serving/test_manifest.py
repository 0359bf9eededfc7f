"""The serving manifest: plan loading, its errors, the pure canary updates, the cluster patch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from fraudrisk.release import cluster, crd
from fraudrisk.release import manifest_edits as edits
from fraudrisk.serving import manifest as m

ROOT = Path(__file__).resolve().parents[3]
LOCAL = ROOT / "manifests" / "local" / "inferenceservice.yaml"

# Hand-written style (dash indented under its key), with comments and a ConfigMap beside it.
ISVC = """\
# header comment kept
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  FRAUDRISK_FEAST__ONLINE_STORE: sqlite
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: fraud-risk
  namespace: fraudrisk
  annotations:
    serving.fraudrisk.io/traffic-mode: canary  # trailing comment kept
spec:
  predictor:
    minReplicas: 1
    model:
      modelFormat:
        name: fraudrisk
      runtime: fraudrisk-scorer
      env:
        # the model reference
        - name: FRAUDRISK_SERVING__MODEL_URI
          value: models:/fraud-risk@champion
        - name: FRAUDRISK_SERVING__REASON_CODES
          value: "3"
      envFrom:
        - configMapRef:
            name: settings
      ports:
        - containerPort: 9090
"""
CHAMPION = "models:/fraud-risk@champion"
V2 = "models:/fraud-risk/2"


def _isvc(text: str) -> dict[str, Any]:
    docs = list(YAML(typ="safe").load_all(text))
    return next(d for d in docs if d["kind"] == "InferenceService")


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


# ------------------------------------------------------------------ loading


def test_plan_of_a_single_model_manifest() -> None:
    plan = m.plan_from_text(ISVC)
    assert (plan.name, plan.namespace, plan.model_uri) == ("fraud-risk", "fraudrisk", CHAMPION)
    assert plan.stable_model_uri is None and plan.canary_percent is None
    assert (plan.mode, plan.ab_key, plan.http_port) == ("canary", "customer_id", 9090)
    # envFrom ConfigMap resolved, explicit env kept, the model reference not in env
    assert plan.env == {
        "FRAUDRISK_FEAST__ONLINE_STORE": "sqlite",
        "FRAUDRISK_SERVING__REASON_CODES": "3",
    }
    assert plan.routes == [m.Route(variant="default", model_uri=CHAMPION, percent=100)]
    assert plan.candidate_uri is None and plan.shadow_uri is None


def test_plan_of_the_committed_local_manifest() -> None:
    plan = m.load_plan(LOCAL)
    assert plan.model_uri == CHAMPION and plan.http_port == 8080
    assert plan.env["FRAUDRISK_MLFLOW__MODEL_NAME"] == "fraud-risk"  # from the ConfigMap
    assert [r.percent for r in plan.routes] == [100]


def test_http_port_from_the_runtime_in_the_same_file() -> None:
    no_ports = _edit(ISVC, "      ports:\n        - containerPort: 9090\n", "")
    assert m.plan_from_text(no_ports).http_port == m.DEFAULT_HTTP_PORT
    runtime = (
        "apiVersion: serving.kserve.io/v1alpha1\nkind: ServingRuntime\n"
        "metadata:\n  name: fraudrisk-scorer\nspec:\n  containers:\n"
        "    - name: kserve-container\n      args: [--http_port, '7070']\n---\n"
    )
    assert m.plan_from_text(runtime + no_ports).http_port == 7070


def test_storage_uri_is_the_model_when_set() -> None:
    text = _edit(ISVC, "      runtime:", "      storageUri: s3://models/fraud/7\n      runtime:")
    assert m.plan_from_text(text).model_uri == "s3://models/fraud/7"


def test_canary_and_ab_routes() -> None:
    text = edits.set_canary(ISVC, V2, 25)
    plan = m.plan_from_text(text)
    assert plan.routes == [
        m.Route(variant="default", model_uri=CHAMPION, percent=75),
        m.Route(variant="canary", model_uri=V2, percent=25),
    ]
    ab = m.plan_from_text(edits.set_canary(ISVC, V2, 50, mode="ab"))
    assert ab.mode == "ab" and [r.percent for r in ab.routes] == [50, 50]
    keyed = _edit(
        ISVC,
        "traffic-mode: canary",
        "traffic-mode: ab\n    serving.fraudrisk.io/ab-key: terminal_id",
    )
    assert m.plan_from_text(keyed).ab_key == "terminal_id"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("kind: InferenceService", "kind: Deployment", "kind"),
        ("serving.kserve.io/v1beta1", "serving.kserve.io/v1alpha1", "apiVersion"),
        ("    model:\n", "    xgboost:\n", "spec.predictor.model"),
        ("          value: models:/fraud-risk@champion\n", "          value: ''\n", "storageUri"),
        ("    minReplicas: 1", "    canaryTrafficPercent: 101", "canaryTrafficPercent"),
        ("    minReplicas: 1", "    canaryTrafficPercent: -1", "canaryTrafficPercent"),
        ("    minReplicas: 1", "    canaryTrafficPercent: ten", "canaryTrafficPercent"),
        ("    minReplicas: 1", "    canaryTrafficPercent: true", "canaryTrafficPercent"),
        ("traffic-mode: canary", "traffic-mode: mirror", "traffic-mode"),
        (
            "traffic-mode: canary",
            "traffic-mode: canary\n    serving.fraudrisk.io/ab-key: card",
            "ab-key",
        ),
        (
            "traffic-mode: canary",
            "traffic-mode: canary\n    serving.fraudrisk.io/stable-uri: x",
            "stable-uri",
        ),
        (
            "traffic-mode: canary",
            "traffic-mode: canary\n    serving.fraudrisk.io/shadow-model-uri: x",
            "shadow-model-uri",
        ),
        ("  name: fraud-risk\n", "  labels: {}\n", "metadata.name"),
        ("        - containerPort: 9090", "        - containerPort: 70000", "http_port"),
        ("      envFrom:\n        - configMapRef:\n", "      envFrom: x\n      y:\n", "envFrom"),
    ],
)
def test_bad_manifests_are_rejected_naming_the_field(old: str, new: str, field: str) -> None:
    m.plan_from_text(ISVC)  # the unedited manifest is fine: the edit is what fails
    with pytest.raises(m.ManifestError) as caught:
        m.plan_from_text(_edit(ISVC, old, new), source="x.yaml")
    assert field in str(caught.value) and str(caught.value).startswith("x.yaml: ")


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(m.ManifestError, match="cannot read"):
        m.load_plan(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(m.ManifestError, match="not valid YAML"):
        m.load_plan(bad)


def test_shadow_needs_zero_percent_when_the_spec_model_is_the_candidate() -> None:
    shadow = edits.set_canary(ISVC, V2, 0, mode="shadow")
    plan = m.plan_from_text(shadow)
    assert plan.routes == [m.Route(variant="default", model_uri=CHAMPION, percent=100)]
    assert plan.shadow_uri == V2
    with pytest.raises(m.ManifestError, match="canaryTrafficPercent: must be 0 in shadow"):
        edits.set_canary(ISVC, V2, 10, mode="shadow")
    with pytest.raises(m.ManifestError, match="canaryTrafficPercent"):
        edits.set_traffic_percent(shadow, 5)


def test_shadow_model_annotation_keeps_the_spec_model_answering() -> None:
    text = _edit(
        ISVC,
        "traffic-mode: canary  # trailing comment kept",
        "traffic-mode: shadow\n    serving.fraudrisk.io/shadow-model-uri: models:/fraud-risk/9",
    )
    plan = m.plan_from_text(text)
    assert [r.model_uri for r in plan.routes] == [
        CHAMPION
    ] and plan.shadow_uri == "models:/fraud-risk/9"
    promoted = m.plan_from_text(edits.promote(text))
    assert promoted.model_uri == promoted.stable_model_uri == "models:/fraud-risk/9"
    assert promoted.shadow_model_uri is None and promoted.shadow_uri is None
    rolled = m.plan_from_text(edits.rollback(text))
    assert rolled.model_uri == CHAMPION and rolled.shadow_uri is None


# ------------------------------------------------------------------ pure updates


def test_updates_preserve_the_document() -> None:
    # no-op update = identical text, in both indent styles (hand-written and kustomize's)
    assert edits.set_traffic_percent(ISVC, None) == ISVC
    local = LOCAL.read_text()
    assert edits.set_traffic_percent(local, None) == local
    updated = edits.set_canary(ISVC, V2, 10)
    for kept in ("# header comment kept", "# trailing comment kept", "# the model reference"):
        assert kept in updated
    changed = [line for line in updated.splitlines() if line not in ISVC.splitlines()]
    assert changed == [
        "    serving.fraudrisk.io/stable-model-uri: models:/fraud-risk@champion",
        "          value: models:/fraud-risk/2",
        "    canaryTrafficPercent: 10",
    ]
    assert updated.split("---")[0] == ISVC.split("---")[0]  # the ConfigMap untouched


def test_canary_start_restart_promote_rollback_round_trip() -> None:
    started = edits.set_canary(ISVC, V2, 10)
    plan = m.plan_from_text(started)
    assert (plan.model_uri, plan.stable_model_uri, plan.canary_percent) == (V2, CHAMPION, 10)
    # a second candidate replaces the first; the stable model stays the champion
    again = m.plan_from_text(edits.set_canary(started, "models:/fraud-risk/3", 30))
    assert (again.stable_model_uri, again.canary_percent) == (CHAMPION, 30)
    assert m.plan_from_text(edits.set_traffic_percent(started, 50)).canary_percent == 50
    promoted = m.plan_from_text(edits.promote(started))
    assert promoted.model_uri == promoted.stable_model_uri == V2
    assert promoted.canary_percent is None and [r.percent for r in promoted.routes] == [100]
    rolled = m.plan_from_text(edits.rollback(started))
    assert rolled.model_uri == rolled.stable_model_uri == CHAMPION
    assert rolled.canary_percent is None and rolled.routes[0].model_uri == CHAMPION


def test_update_errors() -> None:
    with pytest.raises(m.ManifestError, match="nothing to roll back"):
        edits.rollback(ISVC)
    with pytest.raises(m.ManifestError, match="already the stable model"):
        edits.set_canary(ISVC, CHAMPION, 10)
    for percent in (101, -5):
        with pytest.raises(m.ManifestError, match="canaryTrafficPercent"):
            edits.set_canary(ISVC, V2, percent)
        with pytest.raises(m.ManifestError, match="canaryTrafficPercent"):
            edits.set_traffic_percent(ISVC, percent)
    with pytest.raises(m.ManifestError, match="traffic-mode"):
        edits.set_canary(ISVC, V2, 10, mode="mirror")  # type: ignore[arg-type]


def test_storage_uri_and_mlflow_reference_switch() -> None:
    text = edits.set_canary(ISVC, "s3://models/fraud/7", 20)
    model = _isvc(text)["spec"]["predictor"]["model"]
    assert model["storageUri"] == "s3://models/fraud/7"
    assert {"name": m.MODEL_URI_ENV, "value": m.STORAGE_MOUNT} in model["env"]
    assert m.plan_from_text(text).model_uri == "s3://models/fraud/7"
    back = _isvc(edits.rollback(text))["spec"]["predictor"]["model"]
    assert "storageUri" not in back
    assert {"name": m.MODEL_URI_ENV, "value": CHAMPION} in back["env"]


# ------------------------------------------------------------------ the cluster patch


class FakeCustomObjectsApi:
    """Records calls the way kubernetes.client.CustomObjectsApi receives them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def patch_namespaced_custom_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("patch", kwargs))
        return {"patched": kwargs["body"]}

    def get_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("get", {"args": args}))
        return {"kind": "InferenceService"}


def test_merge_patch() -> None:
    before = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2], "same": {"x": 1}}
    after = {"a": 1, "b": {"c": 5}, "l": [1], "new": "v", "same": {"x": 1}}
    assert cluster.merge_patch(before, after) == {"b": {"c": 5, "d": None}, "l": [1], "new": "v"}
    assert cluster.merge_patch(before, before) == {}


def test_apply_update_patches_the_inferenceservice() -> None:
    api = FakeCustomObjectsApi()
    patcher = cluster.InferenceServicePatcher(api)
    started = edits.set_canary(ISVC, V2, 20)
    cluster.apply_update(patcher, ISVC, started)
    kind, call = api.calls[-1]
    assert kind == "patch"
    assert (call["group"], call["version"], call["plural"]) == (
        "serving.kserve.io",
        "v1beta1",
        "inferenceservices",
    )
    assert (call["name"], call["namespace"], call["field_validation"]) == (
        "fraud-risk",
        "fraudrisk",
        "Strict",
    )
    body = call["body"]
    assert body["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert body["metadata"] == {"annotations": {m.STABLE_MODEL_URI: CHAMPION}}
    assert {"name": m.MODEL_URI_ENV, "value": V2} in body["spec"]["predictor"]["model"]["env"]
    cluster.apply_update(patcher, started, edits.promote(started))
    assert api.calls[-1][1]["body"]["spec"]["predictor"]["canaryTrafficPercent"] is None
    n_calls = len(api.calls)
    assert cluster.apply_update(patcher, ISVC, ISVC) is None and len(api.calls) == n_calls
    assert patcher.read("fraud-risk", "fraudrisk") == {"kind": "InferenceService"}
    assert api.calls[-1][1]["args"] == (
        "serving.kserve.io",
        "v1beta1",
        "fraudrisk",
        "inferenceservices",
        "fraud-risk",
    )


def test_kubeconfig_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert cluster.kubeconfig_from_env() is None
    config = tmp_path / "config"
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{config}")
    assert cluster.kubeconfig_from_env() is None  # named but not there
    config.write_text("apiVersion: v1\n")
    assert cluster.kubeconfig_from_env() == str(config)


# ------------------------------------------------------------------ schema validation


def test_validate_accepts_and_rejects() -> None:
    good = _isvc(ISVC)
    assert crd.validate_manifest(good) == []
    cases = {
        "spec.predictor.canaryTrafficPercent": (
            "    minReplicas: 1",
            "    canaryTrafficPercent: ten",
        ),
        "spec.predictor: unknown field(s) canaryPercent": (
            "    minReplicas: 1",
            "    canaryPercent: 10",
        ),
        "spec.predictor.minReplicas": ("    minReplicas: 1", "    minReplicas: '1'"),
        "metadata.annotations.serving.fraudrisk.io/traffic-mode": ("mode: canary", "mode: 7"),
        "duplicate entry": (
            "        - name: FRAUDRISK_SERVING__REASON_CODES",
            f"        - name: {m.MODEL_URI_ENV}",
        ),
        "metadata.name": ("  name: fraud-risk\n", "  name: Fraud_Risk\n"),
        "<root>: unknown field(s) status2": ("spec:\n", "status2: {}\nspec:\n"),
        "traffic-mode": ("mode: canary", "mode: mirror"),
    }
    for expected, (old, new) in cases.items():
        errors = crd.validate_manifest(_isvc(_edit(ISVC, old, new)))
        assert any(expected in e for e in errors), (expected, errors)


def test_validate_other_kinds() -> None:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "s"},
        "data": {"k": "v"},
    }
    assert crd.validate_manifest(config_map) == []
    assert crd.validate_manifest({**config_map, "data": {"k": 1}}) == [
        "data.k: 1 is not of type 'string'"
    ]
    assert crd.validate_manifest({**config_map, "spec": {}}) == ["<root>: unknown field(s) spec"]
    unknown = crd.validate_manifest(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    )
    assert len(unknown) == 1 and "no schema for apps/v1 Deployment" in unknown[0]
    assert crd.validate_text(ISVC) == []
    assert crd.validate_text(_edit(ISVC, "data:\n  FRAUDRISK", "date:\n  FRAUDRISK")) == [
        "ConfigMap/settings: <root>: unknown field(s) date"
    ]


def test_strict_schema_keeps_preserve_unknown_fields_open() -> None:
    schema = {
        "type": "object",
        "properties": {
            "closed": {"type": "object", "properties": {"a": {"type": "string"}}},
            "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    strict = crd.strict_schema(schema)
    assert strict["additionalProperties"] is False
    assert strict["properties"]["closed"]["additionalProperties"] is False
    assert "additionalProperties" not in strict["properties"]["open"]
    assert strict["properties"]["map"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in schema  # a copy: the input is untouched


def test_missing_crd_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(m.ManifestError, match="no CRD files"):
        crd.validate_manifest(_isvc(ISVC), crd_dir=tmp_path)
