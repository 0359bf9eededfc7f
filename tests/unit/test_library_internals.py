"""The private names of third-party libraries our code relies on: still there, still the same.

:data:`INTERNALS` lists every private (``_``-prefixed) library name used by ``src/``,
``serving/``, ``components/`` and ``pipelines/`` — called, overridden, read or patched — plus
the undocumented KServe hooks our subclasses override and the KServe call they copy. The
libraries whose private names we use are pinned below their next minor version in
``pyproject.toml``; when a pin is raised, these tests say which of our files to re-check.

An attribute path is resolved from the module with ``getattr``; ``Class()._name`` is an
attribute the class (or a base) assigns on ``self``, found in its source (no instance built).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class Internal:
    """One library name our code depends on, and where."""

    module: str
    attribute: str  # dotted path from the module; ``Class()._x``: assigned on instances
    where: str  # our file and what it does with the name
    library: str  # the distribution whose pin guards it
    params: tuple[str, ...] | None = None  # the parameters our call / override expects
    coroutine: bool | None = None  # our override / call is async (True) or not (False)

    @property
    def name(self) -> str:
        return f"{self.module}.{self.attribute}"


SERVER = "src/fraudrisk/serving/server.py"
WORKERS = "src/fraudrisk/serving/workers.py"
MLFLOW_IO = "src/fraudrisk/registry/mlflow_io.py"
KSERVE_MP = "kserve.protocol.rest.multiprocess.server"
TRACKING = "mlflow.tracking._tracking_service.utils"
REGISTRY = "mlflow.tracking._model_registry.utils"

INTERNALS: list[Internal] = [
    # ---------------------------------------------------------------- kserve (pinned)
    Internal(
        "kserve.model_server",
        "ModelServer._register_and_check_atleast_one_model_is_ready",
        f"{SERVER} calls it (BoundModelServer.start, the several-workers path)",
        "kserve",
        params=("self", "models"),
        coroutine=False,
    ),
    Internal(
        "kserve.model_server",
        "ModelServer._serve",
        f"{SERVER} runs it with asyncio.run (BoundModelServer.start)",
        "kserve",
        params=("self",),
        coroutine=True,
    ),
    Internal(
        "kserve.model_server",
        "ModelServer()._rest_server",
        f"{SERVER} reads it (BoundModelServer.setup_event_loop)",
        "kserve",
    ),
    Internal(
        "kserve.model_server",
        "ModelServer()._rest_multiprocess_server",
        f"{SERVER} sets and reads it (BoundModelServer.start, setup_event_loop)",
        "kserve",
    ),
    Internal(
        KSERVE_MP,
        "RESTServerMultiProcess()._rest_server",
        f"{SERVER} (setup_event_loop) and {WORKERS} (keep_subprocess_alive) read it",
        "kserve",
    ),
    Internal(
        KSERVE_MP,
        "RESTServerMultiProcess()._processes",
        f"{WORKERS} reads and replaces its entries (PatientRESTServerMultiProcess)",
        "kserve",
    ),
    Internal(
        KSERVE_MP,
        "RESTServerProcess()._process",
        f"{WORKERS} reads process._process (PatientRESTServerMultiProcess.keep_subprocess_alive)",
        "kserve",
    ),
    # Undocumented KServe hooks our subclasses override, and the KServe calls they copy.
    Internal(
        "kserve.model_server",
        "ModelServer.start",
        f"{SERVER} overrides it (BoundModelServer.start copies its several-workers path)",
        "kserve",
        params=("self", "models"),
        coroutine=False,
    ),
    Internal(
        "kserve.model_server",
        "ModelServer.setup_event_loop",
        f"{SERVER} overrides it (BoundModelServer.setup_event_loop)",
        "kserve",
        params=("self",),
        coroutine=False,
    ),
    Internal(
        "kserve.model_server",
        "args.log_config_file",
        f"{SERVER} passes it to the worker supervisor (BoundModelServer.start)",
        "kserve",
    ),
    Internal(
        "kserve.constants.constants",
        "FASTAPI_APP_IMPORT_STRING",
        f"{SERVER} passes it to the worker supervisor (BoundModelServer.start)",
        "kserve",
    ),
    Internal(
        "kserve.protocol.dataplane",
        "DataPlane.ready",
        f"{SERVER} overrides it (ModelsReadyDataPlane.ready)",
        "kserve",
        params=("self",),
        coroutine=True,
    ),
    Internal(
        "kserve.protocol.dataplane",
        "DataPlane.model_metadata",
        f"{SERVER} overrides it (ModelsReadyDataPlane.model_metadata)",
        "kserve",
        params=("self", "model_name"),
        coroutine=True,
    ),
    Internal(
        KSERVE_MP,
        "RESTServerMultiProcess.__init__",
        f"{SERVER} builds one as KServe's ModelServer.start does (BoundModelServer.start)",
        "kserve",
        params=(
            "self",
            "app",
            "data_plane",
            "model_repository_extension",
            "http_port",
            "access_log_format",
            "workers",
            "grace_period",
            "log_config_file",
            "event_loop",
            "timeout_keep_alive",
            "ssl_certfile",
            "ssl_keyfile",
        ),
    ),
    Internal(
        KSERVE_MP,
        "RESTServerMultiProcess.init_processes",
        f"{WORKERS} overrides it (PatientRESTServerMultiProcess.init_processes)",
        "kserve",
        params=("self", "sockets"),
        coroutine=False,
    ),
    Internal(
        KSERVE_MP,
        "RESTServerMultiProcess.keep_subprocess_alive",
        f"{WORKERS} overrides it (PatientRESTServerMultiProcess.keep_subprocess_alive)",
        "kserve",
        params=("self", "sockets"),
        coroutine=True,
    ),
    Internal(
        KSERVE_MP,
        "RESTServerProcess.__init__",
        f"{WORKERS} builds a replacement worker (keep_subprocess_alive)",
        "kserve",
        params=("self", "sockets", "target", "log_config_file"),
    ),
    # ---------------------------------------------------------------- mlflow (pinned)
    Internal(
        TRACKING,
        "_tracking_uri",
        f"{MLFLOW_IO} saves it to restore it (mlflow_uris; private module imported)",
        "mlflow",
    ),
    Internal(
        TRACKING,
        "set_tracking_uri",
        f"{MLFLOW_IO} restores the saved URI with it (mlflow_uris; private module imported)",
        "mlflow",
        params=("uri",),
    ),
    Internal(
        REGISTRY,
        "_registry_uri",
        f"{MLFLOW_IO} saves it and patches it back (mlflow_uris; private module imported)",
        "mlflow",
    ),
    # ------------------------------- documented names that look private (not pinned)
    Internal(
        "confluent_kafka",
        "KafkaError._PARTITION_EOF",
        "src/fraudrisk/jobs/polling.py compares error codes with it",
        "confluent-kafka",
    ),
    Internal(
        "confluent_kafka",
        "KafkaError._TIMED_OUT",
        "src/fraudrisk/io/kafka.py raises a KafkaError with it",
        "confluent-kafka",
    ),
    Internal(
        "confluent_kafka.cimpl",
        "NewTopic",
        "src/fraudrisk/io/kafka.py imports it from the C module (confluent_kafka.admin has it too)",
        "confluent-kafka",
    ),
    Internal(
        "sqlalchemy.engine",
        "Row._mapping",
        "src/fraudrisk/alerts/store.py reads row._mapping (AlertStore)",
        "sqlalchemy",
    ),
]


def assigned_attributes(cls: type, *, bases: bool = True) -> set[str]:
    """Names a class (and, with ``bases``, its bases) assigns on ``self`` in its source."""
    names: set[str] = set()
    for klass in cls.__mro__ if bases else (cls,):
        if klass is object:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):  # built-in or compiled: no source to read
            continue
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
            ):
                names.add(node.attr)
    return names


_MISSING = object()


def resolve(internal: Internal) -> Any:
    """The object ``internal`` names (for ``Class()._x``: the class); else AssertionError."""
    advice = f"re-check that code before raising the {internal.library} pin"
    gone = AssertionError(f"{internal.name} is gone: {internal.where}; {advice}")
    try:
        found: Any = importlib.import_module(internal.module)
    except ImportError as error:
        raise AssertionError(
            f"module {internal.module} is gone ({error}): {internal.where}; {advice}"
        ) from None
    parts = internal.attribute.split(".")
    for index, part in enumerate(parts):
        if part.endswith("()"):  # a class; the next (last) part is set on its instances
            cls = getattr(found, part[:-2], None)
            attribute = parts[index + 1]
            if isinstance(cls, type) and attribute in set(dir(cls)) | assigned_attributes(cls):
                return cls
            raise gone
        found = getattr(found, part, _MISSING)
        if found is _MISSING:
            raise gone
    return found


def check(internal: Internal) -> None:
    """Fail, naming the attribute and our file, when it is gone or its signature changed."""
    found = resolve(internal)
    advice = f"re-check that code before raising the {internal.library} pin"
    if internal.params is not None:
        params = tuple(inspect.signature(found).parameters)
        if params != internal.params:
            raise AssertionError(
                f"{internal.name} changed its parameters to {params}, {internal.where} "
                f"expects {internal.params}; {advice}"
            )
    if internal.coroutine is not None and inspect.iscoroutinefunction(found) != internal.coroutine:
        kind = "a coroutine function" if internal.coroutine else "a plain function"
        raise AssertionError(f"{internal.name} is no longer {kind}: {internal.where}; {advice}")


@pytest.mark.parametrize("internal", INTERNALS, ids=lambda internal: internal.name)
def test_library_internal_is_still_there(internal: Internal) -> None:
    check(internal)


# ------------------------------------------------------------------- the checker can fail


def test_a_missing_method_fails_naming_it_and_our_file() -> None:
    gone = Internal(
        "kserve.model_server", "ModelServer._serve_gone", f"{SERVER} overrides it", "kserve"
    )
    expected = (
        f"kserve.model_server.ModelServer._serve_gone is gone: {SERVER} overrides it; "
        "re-check that code before raising the kserve pin"
    )
    with pytest.raises(AssertionError, match=re.escape(expected)):
        check(gone)


def test_a_missing_instance_attribute_or_module_fails() -> None:
    attribute = Internal(KSERVE_MP, "RESTServerProcess()._proc", f"{WORKERS} reads it", "kserve")
    with pytest.raises(
        AssertionError, match=re.escape(f"RESTServerProcess()._proc is gone: {WORKERS}")
    ):
        check(attribute)
    module = Internal("mlflow.tracking._gone", "utils", f"{MLFLOW_IO} imports it", "mlflow")
    with pytest.raises(AssertionError, match=re.escape("module mlflow.tracking._gone is gone")):
        check(module)


def test_a_changed_signature_fails_naming_both() -> None:
    changed = Internal(
        "kserve.model_server",
        "ModelServer._serve",
        f"{SERVER} calls it",
        "kserve",
        params=("self", "x"),
    )
    with pytest.raises(
        AssertionError, match=r"ModelServer\._serve changed its parameters to \('self',\)"
    ):
        check(changed)
    sync = Internal("kserve.model_server", "ModelServer._serve", SERVER, "kserve", coroutine=False)
    with pytest.raises(AssertionError, match="no longer a plain function"):
        check(sync)


# ------------------------------------------------------------------- behaviour we rely on


def test_mlflow_keeps_the_uris_in_the_globals_mlflow_uris_restores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``mlflow_uris`` saves and restores these globals: the fluent setters must write them."""
    import mlflow

    tracking = importlib.import_module(TRACKING)
    registry = importlib.import_module(REGISTRY)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)  # the setters export them; restored after
    monkeypatch.setattr(tracking, "_tracking_uri", tracking._tracking_uri)  # restored after
    monkeypatch.setattr(registry, "_registry_uri", registry._registry_uri)
    mlflow.set_tracking_uri("file:///tmp/fraudrisk-internals-tracking")
    mlflow.set_registry_uri("file:///tmp/fraudrisk-internals-registry")
    assert tracking._tracking_uri == "file:///tmp/fraudrisk-internals-tracking", MLFLOW_IO
    assert registry._registry_uri == "file:///tmp/fraudrisk-internals-registry", MLFLOW_IO


def _our_private_names(cls: type) -> set[str]:
    """Private attributes and methods our classes in ``cls``'s MRO define or assign."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("fraudrisk"):
            names |= set(vars(klass)) | assigned_attributes(klass, bases=False)
    # ``_abc_impl``: every ABC subclass gets its own from ``abc``, it shadows nothing.
    return {n for n in names if n.startswith("_") and not n.startswith(("__", "_abc_"))}


@pytest.mark.parametrize(
    ("ours", "library"),
    [
        ("fraudrisk.serving.kserve_model:FraudRiskModel", "kserve:Model"),
        ("fraudrisk.serving.server:BoundModelServer", "kserve.model_server:ModelServer"),
        ("fraudrisk.serving.server:ModelsReadyDataPlane", "kserve.protocol.dataplane:DataPlane"),
        (
            "fraudrisk.serving.workers:PatientRESTServerMultiProcess",
            f"{KSERVE_MP}:RESTServerMultiProcess",
        ),
    ],
)
def test_our_private_names_do_not_shadow_the_library_base(ours: str, library: str) -> None:
    """A private attribute or method of ours on a library subclass must not clobber one of its.

    The private library attributes our code uses on purpose (:data:`INTERNALS`) are allowed.
    """

    def load(spec: str) -> type:
        module, name = spec.split(":")
        found: type = getattr(importlib.import_module(module), name)
        return found

    ours_cls, base = load(ours), load(library)
    intended = {i.attribute.rsplit(".", 1)[-1] for i in INTERNALS}
    theirs = set(dir(base)) | assigned_attributes(base)
    clashes = sorted((_our_private_names(ours_cls) & theirs) - intended)
    assert not clashes, f"{ours} shadows {library}'s private {clashes}: rename ours"
