"""The serving manifest: what a KServe ``InferenceService`` asks to serve, read as a plan.

:func:`load_plan` reads a :class:`ServingPlan` (models, traffic split, mode, env) from an
InferenceService YAML file — what ``fraudrisk serve --manifest`` runs locally. Reading uses
PyYAML's safe loader (KServe depends on it); the serving runtime needs no other YAML library.

The canary updates (text → text, comments and layout kept) that ``fraudrisk canary`` writes
are in :mod:`fraudrisk.release.manifest_edits`; validation against the KServe CRDs in
:mod:`fraudrisk.release.crd`; sending a change to a cluster in :mod:`fraudrisk.release.cluster`.

KServe semantics: the predictor's model is the *latest* revision; with ``canaryTrafficPercent``
P it gets P % and the previously rolled-out revision the rest. That stable model is recorded in
the annotation ``serving.fraudrisk.io/stable-model-uri`` so the split is explicit and runnable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fraudrisk.schemas import Transaction
from fraudrisk.vocab import CANARY, SHADOW, TRAFFIC_MODES, TrafficMode

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
    mode: TrafficMode = Field(CANARY, description="Annotation traffic-mode.")
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
        if self.mode == SHADOW:
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
        return self.candidate_uri if self.mode == SHADOW else None


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
        "canary_percent": parse_percent(isvc["spec"]["predictor"].get("canaryTrafficPercent")),
        "mode": parse_mode(annotations.get(TRAFFIC_MODE, CANARY)),
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
    """The non-empty documents of a YAML text (safe loader; a key repeated in a mapping fails).

    Raises:
        ManifestError: The text is not valid YAML.
    """
    try:
        return [doc for doc in yaml.load_all(text, Loader=_UniqueKeyLoader) if doc is not None]
    except Exception as exc:  # YAMLError, and e.g. ValueError for an impossible date
        raise ManifestError(f"not valid YAML: {exc}") from exc


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader (libyaml's when built) refusing a key twice in one mapping.

    PyYAML would keep the last value; a repeated key in a manifest is a mistake to report.
    """

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<" may override merged keys
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
            except TypeError:  # unhashable: the base constructor reports it
                continue
            if repeated:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


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
    parse_mode(annotations.get(TRAFFIC_MODE, CANARY))
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


def parse_percent(value: Any) -> int | None:
    """A ``canaryTrafficPercent`` value: None (absent) or an integer from 0 to 100.

    Raises:
        ManifestError: Another value.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ManifestError(f"{PERCENT_FIELD}: must be an integer from 0 to 100, got {value!r}")
    return value


def parse_mode(value: str) -> TrafficMode:
    """A ``traffic-mode`` annotation value as a :data:`~fraudrisk.vocab.TrafficMode`.

    Raises:
        ManifestError: An unknown mode.
    """
    for mode in TRAFFIC_MODES:
        if value == mode:
            return mode
    raise ManifestError(
        f"metadata.annotations[{TRAFFIC_MODE}]: unknown mode {value!r}; "
        f"expected one of {', '.join(TRAFFIC_MODES)}"
    )


def _ab_key(value: str) -> str:
    if value not in Transaction.model_fields:
        raise ManifestError(
            f"metadata.annotations[{AB_KEY}]: {value!r} is not a transaction field "
            f"({', '.join(Transaction.model_fields)})"
        )
    return value


def _check_split(plan: ServingPlan) -> None:
    if plan.shadow_model_uri and plan.mode != SHADOW:
        raise ManifestError(f"metadata.annotations[{SHADOW_MODEL_URI}]: only with mode {SHADOW}")
    if plan.mode != SHADOW or plan.candidate_uri is None:
        return
    if plan.shadow_model_uri and plan.canary_percent is not None:
        raise ManifestError(
            f"{PERCENT_FIELD}: must be absent with {SHADOW_MODEL_URI} (the spec's model answers)"
        )
    if not plan.shadow_model_uri and plan.canary_percent != 0:
        raise ManifestError(
            f"{PERCENT_FIELD}: must be 0 in {SHADOW} mode when the spec's model is the candidate "
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
