"""The canary updates of a serving manifest: pure text → text edits that keep comments and layout.

:func:`set_canary`, :func:`promote`, :func:`rollback` and :func:`set_traffic_percent` are what
``fraudrisk canary`` writes into an InferenceService file (or sends to the cluster, through
:mod:`fraudrisk.release.cluster`). Every result is read back as a plan
(:mod:`fraudrisk.serving.manifest`), so an update never writes an unusable manifest.

They round-trip the YAML with ``ruamel.yaml`` (the ``release`` extra); the serving runtime only
reads manifests and needs none of it.
"""

from __future__ import annotations

import io
import itertools
from typing import Any

from ruamel.yaml import YAML

from fraudrisk.serving.manifest import (
    MODEL_URI_ENV,
    REGISTRY_SCHEMES,
    SHADOW_MODEL_URI,
    STABLE_MODEL_URI,
    STORAGE_MOUNT,
    TRAFFIC_MODE,
    ManifestError,
    parse_mode,
    parse_percent,
    plan_from_text,
)
from fraudrisk.vocab import TrafficMode


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
    parse_percent(percent)
    stable = plan.stable_model_uri or plan.model_uri
    if model_uri == stable:
        raise ManifestError(f"{model_uri} is already the stable model: nothing to canary")

    def change(isvc: Any) -> None:
        _set_annotation(isvc, STABLE_MODEL_URI, stable)
        _set_annotation(isvc, SHADOW_MODEL_URI, None)
        if mode is not None:
            _set_annotation(isvc, TRAFFIC_MODE, parse_mode(mode))
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
    parse_percent(percent)
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
