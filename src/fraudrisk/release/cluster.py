"""The canary change on a cluster: the InferenceService patched through the Kubernetes API.

:class:`InferenceServicePatcher` reads and merge-patches an InferenceService through the
``kubernetes`` client's ``CustomObjectsApi`` (or any object with the same two methods — the
tests use a fake); :func:`apply_update` sends the difference between two manifest texts (e.g.
before and after :func:`fraudrisk.release.manifest_edits.set_canary`) as one JSON merge patch.
A :class:`ManifestTarget` is where ``fraudrisk canary`` applies an update: a manifest file
(:class:`FileTarget`, watched by the local runner) or the live object (:class:`ClusterTarget`).
"""

from __future__ import annotations

import importlib
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ruamel.yaml import YAML

from fraudrisk.serving.manifest import ManifestError, load_docs, single_isvc

KSERVE_GROUP = "serving.kserve.io"
KSERVE_VERSION = "v1beta1"
KSERVE_PLURAL = "inferenceservices"


class KubernetesPatcher(Protocol):
    """Reads and patches InferenceServices on a cluster."""

    def read(self, name: str, namespace: str) -> dict[str, Any]:
        """The InferenceService ``namespace/name`` as the apiserver has it."""
        ...

    def patch(self, name: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch (RFC 7386) to ``namespace/name``; returns the result."""
        ...


class InferenceServicePatcher:
    """:class:`KubernetesPatcher` over the ``kubernetes`` client's ``CustomObjectsApi``."""

    def __init__(self, api: Any) -> None:
        """Wrap ``api``: a ``kubernetes.client.CustomObjectsApi`` (or a test double)."""
        self.api = api

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None) -> InferenceServicePatcher:
        """Connect with a kubeconfig file (default: ``$KUBECONFIG``, then ``~/.kube/config``).

        Raises:
            ManifestError: The ``kubernetes`` package (extra ``serving``) is not installed.
        """
        try:  # imported here: only cluster commands need the client
            client = importlib.import_module("kubernetes.client")
            config = importlib.import_module("kubernetes.config")
        except ImportError as exc:
            raise ManifestError(
                "the kubernetes package is missing: pip install -e '.[serving]'"
            ) from exc
        config.load_kube_config(config_file=kubeconfig)
        return cls(client.CustomObjectsApi())

    def read(self, name: str, namespace: str) -> dict[str, Any]:
        """The InferenceService ``namespace/name``."""
        found: dict[str, Any] = self.api.get_namespaced_custom_object(
            KSERVE_GROUP, KSERVE_VERSION, namespace, KSERVE_PLURAL, name
        )
        return found

    def patch(self, name: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch ``namespace/name``, rejecting unknown fields (fieldValidation Strict)."""
        result: dict[str, Any] = self.api.patch_namespaced_custom_object(
            group=KSERVE_GROUP,
            version=KSERVE_VERSION,
            namespace=namespace,
            plural=KSERVE_PLURAL,
            name=name,
            body=body,
            field_validation="Strict",
        )
        return result


def kubeconfig_from_env() -> str | None:
    """The kubeconfig named by ``$KUBECONFIG`` (first existing entry), None when unset."""
    for entry in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if entry.strip() and Path(entry.strip()).expanduser().is_file():
            return str(Path(entry.strip()).expanduser())
    return None


def merge_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) turning ``before`` into ``after``.

    Removed keys become null; mappings recurse; lists and scalars are replaced whole.
    """
    patch: dict[str, Any] = {key: None for key in before if key not in after}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            nested = merge_patch(old, value)
            if nested:
                patch[key] = nested
        elif key not in before or old != value:
            patch[key] = value
    return patch


def apply_update(patcher: KubernetesPatcher, before: str, after: str) -> dict[str, Any] | None:
    """Send the change between two manifest texts to the cluster's InferenceService.

    Args:
        patcher: The cluster access (:class:`InferenceServicePatcher`).
        before: The manifest before the update (e.g. before :func:`set_canary`).
        after: The manifest after it.

    Returns:
        The patched object, or None when nothing changed (no request is sent).
    """
    old, new = (single_isvc(load_docs(text)) for text in (before, after))
    body = merge_patch(
        {k: old.get(k) for k in ("metadata", "spec")}, {k: new.get(k) for k in ("metadata", "spec")}
    )
    if not body:
        return None
    meta = new["metadata"]
    return patcher.patch(meta["name"], meta.get("namespace") or "default", body)


# ---------------------------------------------------------------- where an update goes


class ManifestTarget(Protocol):
    """Where the canary commands read and write the InferenceService: a file or the cluster."""

    @property
    def where(self) -> str:
        """Says what is updated, for messages."""
        ...

    def read(self) -> str:
        """The current manifest YAML."""
        ...

    def write(self, before: str, after: str) -> None:
        """Replace ``before`` (what :meth:`read` returned) by ``after``."""
        ...


@dataclass(frozen=True)
class FileTarget:
    """A manifest file, replaced atomically (``fraudrisk serve --manifest`` watches it)."""

    path: Path

    @property
    def where(self) -> str:
        """The file."""
        return str(self.path)

    def read(self) -> str:
        """The file's text.

        Raises:
            ManifestError: The file cannot be read.
        """
        try:
            return self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ManifestError(f"{self.path}: cannot read ({exc.strerror})") from exc

    def write(self, before: str, after: str) -> None:
        """Write ``after`` (a reader sees the old or the new file, never a half-written one).

        Raises:
            ManifestError: The file changed since it was read (another command ran meanwhile).
        """
        if self.read() != before:
            raise ManifestError(f"{self.path} changed while this command ran: run it again")
        staged = self.path.with_name(f".{self.path.name}.tmp")
        staged.write_text(after, encoding="utf-8")
        os.replace(staged, self.path)


@dataclass(frozen=True)
class ClusterTarget:
    """The live InferenceService ``namespace/name``, changed by a JSON merge patch."""

    patcher: KubernetesPatcher
    name: str
    namespace: str

    @classmethod
    def connect(cls, kubeconfig: str | None, name: str, namespace: str) -> ClusterTarget:
        """Reach ``namespace/name`` with a kubeconfig (default: ``$KUBECONFIG``, ~/.kube/config)."""
        try:
            patcher = InferenceServicePatcher.from_kubeconfig(kubeconfig)
        except ManifestError:
            raise
        except Exception as exc:  # the kubernetes client's config errors have no common base
            raise ManifestError(f"cannot use kubeconfig {kubeconfig}: {exc}") from exc
        return cls(patcher, name, namespace)

    @property
    def where(self) -> str:
        """The InferenceService on the cluster."""
        return f"InferenceService {self.namespace}/{self.name} on the cluster"

    def read(self) -> str:
        """The live object (apiVersion, kind, metadata, spec) as YAML."""
        live = self.patcher.read(self.name, self.namespace)
        metadata = {k: v for k, v in (live.get("metadata") or {}).items() if k != "managedFields"}
        out = io.StringIO()
        YAML().dump(  # block style (the safe dumper's flow style can emit unparsable values)
            {
                "apiVersion": live.get("apiVersion"),
                "kind": live.get("kind"),
                "metadata": metadata,
                "spec": live.get("spec"),
            },
            out,
        )
        return out.getvalue()

    def write(self, before: str, after: str) -> None:
        """Patch the live object with the change from ``before`` to ``after``."""
        apply_update(self.patcher, before, after)
