"""The serving manifest: what a KServe ``InferenceService`` asks to serve, and its updates.

* :func:`load_plan` reads a :class:`ServingPlan` (models, traffic split, mode, env) from an
  InferenceService YAML file — what ``fraudrisk serve --manifest`` runs locally.
* :func:`set_canary`, :func:`promote`, :func:`rollback`, :func:`set_traffic_percent` are pure
  text → text updates that keep comments and layout — what ``fraudrisk canary`` writes.

Validation against the KServe CRDs is in :mod:`fraudrisk.inference.crd`; sending a change to a
cluster in :mod:`fraudrisk.inference.cluster`.

KServe semantics: the predictor's model is the *latest* revision; with ``canaryTrafficPercent``
P it gets P % and the previously rolled-out revision the rest. That stable model is recorded in
the annotation ``serving.fraudrisk.io/stable-model-uri`` so the split is explicit and runnable.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML

from fraudrisk.schemas import Transaction

TrafficMode = Literal["canary", "ab", "shadow"]
Variant = Literal["default", "canary"]
PREFIX = "serving.fraudrisk.io/"
STABLE_MODEL_URI = PREFIX + "stable-model-uri"
TRAFFIC_MODE = PREFIX + "traffic-mode"
AB_KEY = PREFIX + "ab-key"
SHADOW_MODEL_URI = PREFIX + "shadow-model-uri"
ANNOTATIONS = (STABLE_MODEL_URI, TRAFFIC_MODE, AB_KEY, SHADOW_MODEL_URI)
MODEL_URI_ENV = "FRAUDRISK_SERVING__MODEL_URI"
STORAGE_MOUNT = "/mnt/models"  # where KServe's storage initializer puts a storageUri's files
REGISTRY_SCHEMES = ("models:/", "runs:/")  # MLflow references: loaded by the scorer itself
ISVC_API_VERSION = "serving.kserve.io/v1beta1"
DEFAULT_HTTP_PORT = 8080
PERCENT_FIELD = "spec.predictor.canaryTrafficPercent"
_RUNTIME_KINDS = ("ServingRuntime", "ClusterServingRuntime")


class ManifestError(ValueError):
    """The manifest is not a usable InferenceService; the message names the field."""


class Route(BaseModel):
    """One answering variant of a plan and its share of the requests."""

    model_config = ConfigDict(frozen=True)

    variant: Variant = Field(description="default = stable (previously rolled out), canary = new.")
    model_uri: str = Field(description="The model this variant serves.")
    percent: int = Field(ge=0, le=100, description="Share of requests answered, in %.")


class ServingPlan(BaseModel):
    """What an InferenceService asks to serve, as the local runner and the canary CLI need it."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="metadata.name; also the served model name.")
    namespace: str = Field("default", description="metadata.namespace.")
    model_uri: str = Field(description="The spec's model: storageUri, else env MODEL_URI_ENV.")
    stable_model_uri: str | None = Field(None, description="Annotation stable-model-uri.")
    canary_percent: int | None = Field(
        None, ge=0, le=100, description="canaryTrafficPercent; None = 100 % to the spec's model."
    )
    mode: TrafficMode = Field("canary", description="Annotation traffic-mode.")
    ab_key: str = Field("customer_id", description="Annotation ab-key: the sticky A/B field.")
    shadow_model_uri: str | None = Field(None, description="Annotation shadow-model-uri.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Predictor env, envFrom ConfigMaps of the same file resolved, without "
        "MODEL_URI_ENV (each variant's model is in routes / shadow_uri).",
    )
    http_port: int = Field(DEFAULT_HTTP_PORT, ge=1, le=65535, description="Port hint.")

    @property
    def candidate_uri(self) -> str | None:
        """The model under evaluation, None when only one model is in play."""
        if self.shadow_model_uri:
            return self.shadow_model_uri
        differs = self.stable_model_uri is not None and self.stable_model_uri != self.model_uri
        return self.model_uri if differs else None

    @property
    def routes(self) -> list[Route]:
        """The variants that answer requests, with their shares (summing to 100)."""
        if self.mode == "shadow":
            answering = self.model_uri if self.shadow_model_uri else self.stable_model_uri
            return [Route(variant="default", model_uri=answering or self.model_uri, percent=100)]
        if self.candidate_uri is None or self.canary_percent is None:
            return [Route(variant="default", model_uri=self.model_uri, percent=100)]
        stable = self.stable_model_uri or self.model_uri
        return [
            Route(variant="default", model_uri=stable, percent=100 - self.canary_percent),
            Route(variant="canary", model_uri=self.model_uri, percent=self.canary_percent),
        ]

    @property
    def shadow_uri(self) -> str | None:
        """The model that scores every request in shadow (never returned), if any."""
        return self.candidate_uri if self.mode == "shadow" else None


# ---------------------------------------------------------------- reading a plan


def load_plan(path: str | Path) -> ServingPlan:
    """Read the serving plan of the InferenceService in a YAML file.

    Args:
        path: A YAML file with one InferenceService (other documents, e.g. the ConfigMap its
            ``envFrom`` names or its ServingRuntime, may sit beside it).

    Returns:
        The plan.

    Raises:
        ManifestError: The file has no single InferenceService, no predictor model, a percent
            out of range, an unknown mode or an inconsistent split; the message names the field.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"{source}: cannot read ({exc.strerror})") from exc
    return plan_from_text(text, source=str(source))


def plan_from_text(text: str, source: str = "<manifest>") -> ServingPlan:
    """:func:`load_plan` on YAML text (``source`` names it in errors)."""
    try:
        return plan_from_docs(load_docs(text), source)
    except ManifestError as exc:
        raise ManifestError(f"{source}: {exc}") from None


def plan_from_docs(docs: list[Any], source: str = "<manifest>") -> ServingPlan:
    """:func:`load_plan` on parsed documents."""
    isvc = single_isvc(docs)
    annotations = _annotations(isvc)
    model = _predictor_model(isvc)
    fields = {
        "name": str(_mapping(isvc.get("metadata"), "metadata").get("name") or ""),
        "namespace": str(isvc["metadata"].get("namespace") or "default"),
        "model_uri": _model_uri(model),
        "stable_model_uri": annotations.get(STABLE_MODEL_URI),
        "canary_percent": _percent(isvc["spec"]["predictor"].get("canaryTrafficPercent")),
        "mode": _mode(annotations.get(TRAFFIC_MODE, "canary")),
        "ab_key": _ab_key(annotations.get(AB_KEY, "customer_id")),
        "shadow_model_uri": annotations.get(SHADOW_MODEL_URI),
        "env": _env(model, docs),
        "http_port": _http_port(model, docs),
    }
    try:
        plan = ServingPlan.model_validate(fields)
    except ValidationError as exc:  # what the field checks above do not cover (e.g. the port)
        first = exc.errors()[0]
        raise ManifestError(f"{first['loc'][0]}: {first['msg']}") from None
    if not plan.name:
        raise ManifestError("metadata.name: missing")
    _check_split(plan)
    return plan


def load_docs(text: str) -> list[Any]:
    """The non-empty documents of a YAML text (safe loader).

    Raises:
        ManifestError: The text is not valid YAML.
    """
    try:
        return [doc for doc in YAML(typ="safe").load_all(text) if doc is not None]
    except Exception as exc:  # ruamel raises several unrelated types for bad YAML
        raise ManifestError(f"not valid YAML: {exc}") from exc


def _mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{field}: missing or not a mapping")
    return value


def single_isvc(docs: list[Any]) -> dict[str, Any]:
    """The one ``serving.kserve.io/v1beta1`` InferenceService among parsed documents.

    Raises:
        ManifestError: There is none, more than one, or its apiVersion is another.
    """
    found = [d for d in docs if isinstance(d, dict) and d.get("kind") == "InferenceService"]
    if len(found) != 1:
        kinds = sorted({str(d.get("kind")) for d in docs if isinstance(d, dict)}) or ["none"]
        raise ManifestError(
            f"kind: expected exactly one InferenceService, found {len(found)} "
            f"(kinds in the file: {', '.join(kinds)})"
        )
    isvc = found[0]
    if isvc.get("apiVersion") != ISVC_API_VERSION:
        raise ManifestError(
            f"apiVersion: expected {ISVC_API_VERSION}, got {isvc.get('apiVersion')}"
        )
    return isvc


def _annotations(isvc: dict[str, Any]) -> dict[str, str]:
    meta = _mapping(isvc.get("metadata"), "metadata")
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ManifestError("metadata.annotations: not a mapping")
    unknown = sorted(k for k in annotations if k.startswith(PREFIX) and k not in ANNOTATIONS)
    if unknown:
        raise ManifestError(
            f"metadata.annotations: unknown {', '.join(unknown)}; known: {', '.join(ANNOTATIONS)}"
        )
    for key in ANNOTATIONS:
        if key in annotations and not (isinstance(annotations[key], str) and annotations[key]):
            raise ManifestError(f"metadata.annotations[{key}]: must be a non-empty string")
    return {str(k): v for k, v in annotations.items()}


def check_annotations(isvc: dict[str, Any]) -> None:
    """Check an InferenceService's ``serving.fraudrisk.io/`` annotations (names, mode, A/B key).

    Raises:
        ManifestError: An annotation is unknown, empty or has an unknown value.
    """
    annotations = _annotations(isvc)
    _mode(annotations.get(TRAFFIC_MODE, "canary"))
    _ab_key(annotations.get(AB_KEY, "customer_id"))


def _predictor_model(isvc: dict[str, Any]) -> dict[str, Any]:
    spec = _mapping(isvc.get("spec"), "spec")
    predictor = _mapping(spec.get("predictor"), "spec.predictor")
    model = predictor.get("model")
    if not isinstance(model, dict):
        raise ManifestError(
            "spec.predictor.model: missing — the scorer is declared as a model "
            "(modelFormat fraudrisk, runtime fraudrisk-scorer)"
        )
    return model


def _model_uri(model: dict[str, Any]) -> str:
    storage = model.get("storageUri")
    if isinstance(storage, str) and storage:
        return storage
    value = _literal_env(model).get(MODEL_URI_ENV)
    if not value:
        raise ManifestError(
            f"spec.predictor.model: no model — set storageUri or env {MODEL_URI_ENV} "
            "(e.g. models:/fraud-risk@champion)"
        )
    return value


def _percent(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ManifestError(f"{PERCENT_FIELD}: must be an integer from 0 to 100, got {value!r}")
    return value


def _mode(value: str) -> TrafficMode:
    modes: tuple[TrafficMode, ...] = get_args(TrafficMode)
    for mode in modes:
        if value == mode:
            return mode
    raise ManifestError(
        f"metadata.annotations[{TRAFFIC_MODE}]: unknown mode {value!r}; "
        f"expected one of {', '.join(modes)}"
    )


def _ab_key(value: str) -> str:
    if value not in Transaction.model_fields:
        raise ManifestError(
            f"metadata.annotations[{AB_KEY}]: {value!r} is not a transaction field "
            f"({', '.join(Transaction.model_fields)})"
        )
    return value


def _check_split(plan: ServingPlan) -> None:
    if plan.shadow_model_uri and plan.mode != "shadow":
        raise ManifestError(f"metadata.annotations[{SHADOW_MODEL_URI}]: only with mode shadow")
    if plan.mode != "shadow" or plan.candidate_uri is None:
        return
    if plan.shadow_model_uri and plan.canary_percent is not None:
        raise ManifestError(
            f"{PERCENT_FIELD}: must be absent with {SHADOW_MODEL_URI} (the spec's model answers)"
        )
    if not plan.shadow_model_uri and plan.canary_percent != 0:
        raise ManifestError(
            f"{PERCENT_FIELD}: must be 0 in shadow mode when the spec's model is the candidate "
            "(on a cluster KServe would otherwise return its answers)"
        )


def _literal_env(container: dict[str, Any]) -> dict[str, str]:
    env = container.get("env") or []
    if not isinstance(env, list):
        raise ManifestError("spec.predictor.model.env: not a list")
    return {
        str(item["name"]): str(item["value"])
        for item in env
        if isinstance(item, dict) and "name" in item and item.get("value") is not None
    }


def _env(model: dict[str, Any], docs: list[Any]) -> dict[str, str]:
    # envFrom ConfigMaps found in the same file are resolved (the rendered local overlay holds
    # them); explicit env wins, as in a pod. valueFrom entries (secrets) are not resolvable here.
    maps = {
        d["metadata"].get("name"): d.get("data") or {}
        for d in docs
        if isinstance(d, dict)
        and d.get("kind") == "ConfigMap"
        and isinstance(d.get("metadata"), dict)
    }
    sources = model.get("envFrom") or []
    if not isinstance(sources, list):
        raise ManifestError("spec.predictor.model.envFrom: not a list")
    env: dict[str, str] = {}
    for source in (s for s in sources if isinstance(s, dict)):
        ref = source.get("configMapRef") or {}
        for key, value in maps.get(ref.get("name"), {}).items():
            env[str(source.get("prefix") or "") + str(key)] = str(value)
    env.update(_literal_env(model))
    env.pop(MODEL_URI_ENV, None)  # the pod's view (maybe STORAGE_MOUNT); the plan has model_uri
    return env


def _http_port(model: dict[str, Any], docs: list[Any]) -> int:
    containers = [model]
    runtime = model.get("runtime")
    for doc in docs:
        is_runtime = isinstance(doc, dict) and doc.get("kind") in _RUNTIME_KINDS
        if is_runtime and (doc.get("metadata") or {}).get("name") == runtime:
            containers += (doc.get("spec") or {}).get("containers") or []
    for container in containers:
        ports = container.get("ports") or []
        if ports and isinstance(ports[0], dict) and isinstance(ports[0].get("containerPort"), int):
            return int(ports[0]["containerPort"])
        args = [str(a) for a in container.get("args") or []]
        if "--http_port" in args[:-1] and args[args.index("--http_port") + 1].isdigit():
            return int(args[args.index("--http_port") + 1])
    return DEFAULT_HTTP_PORT


# ---------------------------------------------------------------- pure updates (text → text)


def set_canary(text: str, model_uri: str, percent: int, *, mode: TrafficMode | None = None) -> str:
    """Start (or re-weight) a canary: ``model_uri`` gets ``percent`` % of the traffic.

    The stable model becomes the current spec model unless one is already recorded; the spec
    model becomes ``model_uri``; ``canaryTrafficPercent`` becomes ``percent``.

    Args:
        text: The manifest YAML (one InferenceService, other documents kept as they are).
        model_uri: The candidate: an MLflow reference (``models:/fraud-risk/7``) goes in env
            ``FRAUDRISK_SERVING__MODEL_URI``, any other URI in ``storageUri``.
        percent: The candidate's share, 0–100 (0 in shadow mode).
        mode: Also set the traffic mode; None keeps the manifest's.

    Returns:
        The updated YAML, comments and layout preserved.

    Raises:
        ManifestError: The manifest is unusable, or the result is (e.g. percent out of range).
    """
    plan = plan_from_text(text)
    _percent(percent)
    stable = plan.stable_model_uri or plan.model_uri
    if model_uri == stable:
        raise ManifestError(f"{model_uri} is already the stable model: nothing to canary")

    def change(isvc: Any) -> None:
        _set_annotation(isvc, STABLE_MODEL_URI, stable)
        _set_annotation(isvc, SHADOW_MODEL_URI, None)
        if mode is not None:
            _set_annotation(isvc, TRAFFIC_MODE, _mode(mode))
        _set_model_uri(isvc, model_uri)
        _set_percent(isvc, percent)

    return _update(text, change)


def promote(text: str) -> str:
    """Promote the candidate: it serves 100 % and is recorded as the stable model.

    The candidate is the shadow model if one is annotated, else the spec model;
    ``canaryTrafficPercent`` is removed (100 % to the spec model).

    Raises:
        ManifestError: The manifest is unusable.
    """
    plan = plan_from_text(text)
    winner = plan.shadow_model_uri or plan.model_uri

    def change(isvc: Any) -> None:
        _set_model_uri(isvc, winner)
        _set_annotation(isvc, STABLE_MODEL_URI, winner)
        _set_annotation(isvc, SHADOW_MODEL_URI, None)
        _set_percent(isvc, None)

    return _update(text, change)


def rollback(text: str) -> str:
    """Drop the candidate: the stable model serves 100 %.

    Raises:
        ManifestError: The manifest is unusable or records no stable model to return to.
    """
    plan = plan_from_text(text)
    if plan.shadow_model_uri:
        return _update(text, lambda isvc: _set_annotation(isvc, SHADOW_MODEL_URI, None))
    stable = plan.stable_model_uri
    if stable is None:
        raise ManifestError(f"metadata.annotations[{STABLE_MODEL_URI}]: none, nothing to roll back")

    def change(isvc: Any) -> None:
        _set_model_uri(isvc, stable)
        _set_percent(isvc, None)

    return _update(text, change)


def set_traffic_percent(text: str, percent: int | None) -> str:
    """Set ``canaryTrafficPercent`` (None removes it: 100 % to the spec model).

    Raises:
        ManifestError: The manifest is unusable, or the percent is out of range or inconsistent.
    """
    plan_from_text(text)
    _percent(percent)
    return _update(text, lambda isvc: _set_percent(isvc, percent))


def _round_trip_yaml(text: str) -> YAML:
    mapping, offset = _guess_indent(text)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long value
    yaml.indent(mapping=mapping, sequence=mapping + offset, offset=offset)
    return yaml


def _guess_indent(text: str) -> tuple[int, int]:
    # (mapping indent, dash offset under the parent key): "  - x" under "env:" is (2, 2) as
    # hand-written here, "- x" is (2, 0) as kustomize writes. Read from the first occurrences.
    mapping: int | None = None
    offset: int | None = None
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    for parent, child in itertools.pairwise(lines):
        if not parent.rstrip().endswith(":"):
            continue
        depth = len(child) - len(child.lstrip(" ")) - (len(parent) - len(parent.lstrip(" ")))
        if child.lstrip().startswith("- "):
            offset = depth if offset is None else offset
        elif depth > 0:
            mapping = depth if mapping is None else mapping
    return mapping or 2, offset or 0


def _update(text: str, change: Any) -> str:
    yaml = _round_trip_yaml(text)
    docs = list(yaml.load_all(text))
    isvcs = [d for d in docs if isinstance(d, dict) and d.get("kind") == "InferenceService"]
    change(isvcs[0])  # plan_from_text already checked there is exactly one
    out = io.StringIO()
    yaml.dump_all(docs, out)
    updated = out.getvalue()
    plan_from_text(updated, source="updated manifest")  # the result must be a usable plan
    return updated


def _set_annotation(isvc: Any, key: str, value: str | None) -> None:
    meta = isvc["metadata"]
    if value is None:
        if isinstance(meta.get("annotations"), dict):
            meta["annotations"].pop(key, None)
        return
    if not isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {}
    meta["annotations"][key] = value


def _set_percent(isvc: Any, percent: int | None) -> None:
    predictor = isvc["spec"]["predictor"]
    if percent is None:
        predictor.pop("canaryTrafficPercent", None)
    else:
        predictor["canaryTrafficPercent"] = percent


def _set_model_uri(isvc: Any, uri: str) -> None:
    # An MLflow reference is loaded by the scorer (env); anything else is fetched by KServe's
    # storage initializer into STORAGE_MOUNT, which the scorer then loads.
    model = isvc["spec"]["predictor"]["model"]
    if uri.startswith(REGISTRY_SCHEMES):
        model.pop("storageUri", None)
        _set_env(model, MODEL_URI_ENV, uri)
    else:
        model["storageUri"] = uri
        _set_env(model, MODEL_URI_ENV, STORAGE_MOUNT)


def _set_env(container: Any, name: str, value: str) -> None:
    if not isinstance(container.get("env"), list):
        container["env"] = []
    for item in container["env"]:
        if isinstance(item, dict) and item.get("name") == name:
            item.pop("valueFrom", None)
            item["value"] = value
            return
    container["env"].append({"name": name, "value": value})
