"""Run :class:`~fraudrisk.serving.kserve_model.FraudRiskModel` in KServe's ``ModelServer``.

The server starts even when the model cannot be loaded yet: it then answers 503 on
``/v2/health/ready`` and ``/v2/models/<name>/ready`` (and refuses inference) until a
background retry loads it, so Kubernetes sends it no traffic meanwhile. With several workers
(KServe's multi-process mode) each worker process loads, retries and watches on its own
(:mod:`fraudrisk.serving.workers`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.model_server import args as kserve_args
from kserve.protocol.dataplane import DataPlane

from fraudrisk.config import Settings
from fraudrisk.serving.asgi import OmitNullsMiddleware, ScorerApp, quiet_request_logs
from fraudrisk.serving.kserve_model import FraudRiskModel, PolicyFactory, ServiceSpec
from fraudrisk.serving.local import ManifestWatcher
from fraudrisk.serving.workers import (
    PatientRESTServerMultiProcess,
    WorkerStart,
    prepare_metrics_dir,
    start_barrier,
)

__all__ = ["ModelsReadyDataPlane", "OmitNullsMiddleware", "build_server", "run", "serve"]
log = logging.getLogger(__name__)


class ModelsReadyDataPlane(DataPlane):  # type: ignore[misc]  # kserve is untyped
    """A data plane whose server readiness is the readiness of every registered model."""

    async def ready(self) -> bool:
        """True when every registered model is ready (KServe's own answer is always True)."""
        models = self.model_registry.get_models()
        return bool(models) and all(model.ready for model in models.values())

    async def model_metadata(self, model_name: str) -> dict[str, Any]:
        """KServe's metadata plus the served versions (the V2 schema wants a list, not null)."""
        metadata: dict[str, Any] = await super().model_metadata(model_name)
        model = self.model_registry.get_model(model_name)
        metadata["versions"] = model.versions() if hasattr(model, "versions") else []
        return metadata


class BoundModelServer(ModelServer):  # type: ignore[misc]  # kserve is untyped
    """KServe's ModelServer on a chosen address, running :class:`ScorerApp`.

    KServe's own always listens on 0.0.0.0 and runs its FastAPI app as is.
    """

    def __init__(self, host: str, **options: Any) -> None:
        """Bind the REST server to ``host`` (``127.0.0.1`` locally, ``0.0.0.0`` in a pod)."""
        super().__init__(**options)
        self.host = host

    def start(self, models: list[Any]) -> None:
        """KServe's ``start``; several workers run under the patient supervisor.

        KServe's own supervisor replaces a worker that does not answer its ping within 5 s
        of being spawned, which is less than a worker needs to import KServe and the scorer.
        """
        if self.workers == 1:
            super().start(models)
            return
        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_multiprocess_server = PatientRESTServerMultiProcess(
            FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            access_log_format=self.access_log_format,
            workers=self.workers,
            grace_period=self.grace_period,
            log_config_file=kserve_args.log_config_file,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
            ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile,
        )
        self.servers.append(self._rest_multiprocess_server.start())
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())

    def setup_event_loop(self) -> None:
        """Called by ``start`` once its REST server exists and before it listens."""
        rest = self._rest_server
        if rest is None and self._rest_multiprocess_server is not None:
            rest = self._rest_multiprocess_server._rest_server  # sent to every worker
        if rest is not None:
            rest.config.host = self.host
            rest.config.app = ScorerApp(self.dataplane)
        super().setup_event_loop()


def build_server(
    model: FraudRiskModel, http_port: int, host: str = "0.0.0.0", workers: int = 1, **options: Any
) -> ModelServer:
    """A ModelServer on ``host:http_port`` (REST only) with ``model`` registered, ready or not."""
    server = BoundModelServer(
        host, http_port=http_port, enable_grpc=False, workers=workers, **options
    )
    server.dataplane = ModelsReadyDataPlane(model_registry=server.registered_models)
    server.register_model(model)
    quiet_request_logs()
    return server


def run(
    model: FraudRiskModel,
    http_port: int,
    host: str = "0.0.0.0",
    workers: int = 1,
    retry_seconds: float = 30.0,
    manifest: Path | None = None,
) -> None:
    """Serve ``model`` until stopped: loaded here (one worker) or in each worker process.

    Args:
        model: The model; with one worker it is loaded here unless a load was already tried
            (the caller then retries it), with several it is loaded by each worker.
        http_port: The port.
        host: The address to listen on.
        workers: Processes sharing the port, each with its own copy of the model.
        retry_seconds: Seconds between load attempts while the model does not load.
        manifest: An InferenceService file to watch and follow (``fraudrisk canary``).
    """
    if workers > 1:
        text = manifest.read_text() if manifest is not None else None
        barrier = start_barrier(workers)
        model.worker_start = WorkerStart(
            model.spec,
            model.settings,
            model.states_factory,
            retry_seconds,
            manifest,
            text,
            barrier,
            model.policy_factory,
        )
        prepare_metrics_dir()
    else:
        if not model.load_began and not model.load():  # the caller may have loaded it
            model.keep_loading(retry_seconds)
        if manifest is not None:
            ManifestWatcher(manifest, model).start()
    build_server(model, http_port, host, workers).start([])


def serve(
    spec: ServiceSpec,
    settings: Settings,
    http_port: int,
    retry_seconds: float = 30.0,
    workers: int | None = None,
    policy_factory: PolicyFactory | None = None,
) -> None:
    """Serve ``spec`` on all addresses with ``workers`` processes (default: the settings').

    ``policy_factory`` opens the live decision policy (None: the models' thresholds decide).
    """
    model = FraudRiskModel(spec, settings, policy_factory=policy_factory)
    run(model, http_port, "0.0.0.0", workers or settings.serving.workers, retry_seconds)
