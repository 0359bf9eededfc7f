"""Validation of Kubernetes manifests against the KServe CRD schemas, as the apiserver does it.

:func:`validate_manifest` checks one document against the KServe CRD ``openAPIV3Schema``
(by default the KServe CRDs bundled in ``kserve-crds/``, package data of this package),
strictly: an unknown field is an error, as ``kubectl apply`` (``--validate=strict``) makes it;
other kinds get a basic-shape check.
:func:`validate_text` does it for every document of a YAML text.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from fraudrisk.serving.manifest import ManifestError, check_annotations, load_docs

CRD_DIR_ENV = "FRAUDRISK_KSERVE_CRDS"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# ObjectMeta as the apiserver checks it (a CRD's schema leaves metadata to the apiserver).
OBJECT_META: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": _DNS_SUBDOMAIN},
        "namespace": {"type": "string", "maxLength": 63, "pattern": _DNS_LABEL},
        "labels": {
            "type": "object",
            "additionalProperties": {
                "type": "string",
                "maxLength": 63,
                "pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
            },
        },
        "annotations": _STRING_MAP,
        "generateName": {"type": "string"},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
    },
}


def _core_schema(kind: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"enum": ["v1"]},
            "kind": {"enum": [kind]},
            "metadata": OBJECT_META,
            **extra,
        },
    }


# Kinds without a CRD here: the basic shape of the core/v1 types the manifests use.
CORE_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("v1", "ConfigMap"): _core_schema(
        "ConfigMap",
        {"data": _STRING_MAP, "binaryData": _STRING_MAP, "immutable": {"type": "boolean"}},
    ),
    ("v1", "Secret"): _core_schema(
        "Secret",
        {"data": _STRING_MAP, "stringData": _STRING_MAP, "type": {"type": "string"}},
    ),
    ("v1", "ServiceAccount"): _core_schema(
        "ServiceAccount",
        {
            "automountServiceAccountToken": {"type": "boolean"},
            "imagePullSecrets": {"type": "array", "items": {"type": "object"}},
            "secrets": {"type": "array", "items": {"type": "object"}},
        },
    ),
    ("v1", "Namespace"): _core_schema("Namespace", {"spec": {"type": "object"}}),
}


def default_crd_dir() -> Path:
    """The KServe CRDs: ``$FRAUDRISK_KSERVE_CRDS``, else the bundled ``kserve-crds/``.

    The bundled ones are package data of ``fraudrisk.release``: KServe's CRD YAML files
    (``serving.kserve.io_*.yaml``), found with :mod:`importlib.resources`.
    """
    override = os.environ.get(CRD_DIR_ENV, "").strip()
    if override:
        return Path(override)
    return Path(str(resources.files("fraudrisk.release") / "kserve-crds"))


def validate_manifest(doc: Mapping[str, Any], crd_dir: str | Path | None = None) -> list[str]:
    """Check one Kubernetes document as ``kubectl apply --validate=strict`` would.

    KServe kinds are checked against their CRD's ``openAPIV3Schema`` made strict: an object
    schema without ``additionalProperties`` or ``x-kubernetes-preserve-unknown-fields`` rejects
    unknown fields (the apiserver would prune them, or reject them under strict field
    validation); ``x-kubernetes-list-type`` map/set lists must not repeat keys; ``metadata`` is
    checked as ObjectMeta. Core kinds (ConfigMap, Secret, ServiceAccount, Namespace) get a basic
    shape. An InferenceService's ``serving.fraudrisk.io/`` annotations are checked too.

    Args:
        doc: The parsed document.
        crd_dir: Directory of the CRD YAML files; default: :func:`default_crd_dir`.

    Returns:
        Error messages (``<field path>: <problem>``), empty when the document is valid.

    Raises:
        ManifestError: ``crd_dir`` holds no CRD files.
    """
    key = (str(doc.get("apiVersion")), str(doc.get("kind")))
    validators = _validators(str(Path(crd_dir) if crd_dir else default_crd_dir()))
    validator = validators.get(key)
    if validator is None:
        known = ", ".join(f"{v}/{k}" for v, k in sorted(validators))
        return [f"apiVersion/kind: no schema for {key[0]} {key[1]} (known: {known})"]
    errors = sorted(_format_error(e) for e in validator.iter_errors(doc))
    if not errors and key[1] == "InferenceService":
        try:
            check_annotations(dict(doc))
        except ManifestError as exc:
            errors.append(str(exc))
    return errors


def validate_text(text: str, crd_dir: str | Path | None = None) -> list[str]:
    """:func:`validate_manifest` on every document of a YAML text, errors prefixed by kind/name."""
    try:
        docs = load_docs(text)
    except ManifestError as exc:
        return [str(exc)]
    errors: list[str] = []
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict):
            errors.append(f"document {index}: not a mapping")
            continue
        name = (
            (doc.get("metadata") or {}).get("name")
            if isinstance(doc.get("metadata"), dict)
            else None
        )
        label = f"{doc.get('kind')}/{name or '?'}"
        errors += [f"{label}: {error}" for error in validate_manifest(doc, crd_dir)]
    return errors


def strict_schema(node: Any) -> Any:
    """A copy of a CRD schema in which unknown fields are errors, as under strict validation.

    An object schema that declares neither ``additionalProperties`` nor
    ``x-kubernetes-preserve-unknown-fields: true`` gets ``additionalProperties: false``.
    """
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict_schema(value) for key, value in node.items()}
    if "properties" in node:
        out["properties"] = {k: strict_schema(v) for k, v in node["properties"].items()}
    closed = node.get("type") == "object" and "additionalProperties" not in node
    if closed and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=4)
def _validators(crd_dir: str) -> dict[tuple[str, str], Any]:
    root = Path(crd_dir)
    files = sorted(root.glob("*.yaml"))
    if not files:
        raise ManifestError(f"{root}: no CRD files (set {CRD_DIR_ENV} to the KServe CRDs)")
    validators = {key: _validator(schema) for key, schema in CORE_SCHEMAS.items()}
    for path in files:
        for crd in load_docs(path.read_text(encoding="utf-8")):
            validators.update(_crd_validators(crd))
    return validators


def _crd_validators(crd: dict[str, Any]) -> dict[tuple[str, str], Any]:
    spec = crd.get("spec") or {}
    found: dict[tuple[str, str], Any] = {}
    for version in spec.get("versions") or []:
        schema = dict(strict_schema(version["schema"]["openAPIV3Schema"]))
        schema["properties"] = {**schema["properties"], "metadata": OBJECT_META}
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
        key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
        found[key] = _validator(schema)
    return found


def _validator(schema: dict[str, Any]) -> Any:
    # jsonschema is imported here: only validation needs it (release and dev extras).
    from jsonschema import Draft4Validator, FormatChecker, ValidationError, validators

    def list_type(_v: Any, kind: Any, instance: Any, schema: dict[str, Any]) -> Any:
        if not isinstance(instance, list) or kind not in ("map", "set"):
            return
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen: set[str] = set()
        for item in instance:
            ident = (
                repr([item.get(k) for k in keys])
                if kind == "map" and isinstance(item, dict)
                else repr(item)
            )
            if ident in seen:
                yield ValidationError(f"duplicate entry {ident} in a list of type {kind} {keys}")
            seen.add(ident)

    formats = FormatChecker(formats=())
    formats.checks("int32")(lambda v: not isinstance(v, int) or -(2**31) <= v < 2**31)
    formats.checks("int64")(lambda v: not isinstance(v, int) or -(2**63) <= v < 2**63)
    strict = validators.extend(  # type: ignore[no-untyped-call]
        Draft4Validator, {"x-kubernetes-list-type": list_type}
    )
    return strict(schema, format_checker=formats)


def _format_error(error: Any) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    where = path.lstrip(".") or "<root>"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties") or {}
        unknown = sorted(str(k) for k in error.instance if k not in known)
        return f"{where}: unknown field(s) {', '.join(unknown)}"
    return f"{where}: {error.message}"
