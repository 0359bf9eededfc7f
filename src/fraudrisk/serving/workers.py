"""Several KServe worker processes on one port, each serving its own copy of the model.

KServe's ``ModelServer(workers=N)`` binds the port once and starts N ``spawn`` processes that
share the socket; each receives the ModelServer's data plane by pickling. A loaded scorer does
not travel that way (boosters, an open online store, threads): a :class:`FraudRiskModel` is
pickled as its :class:`WorkerStart` — spec, settings, retry period, watched manifest — and every
worker loads, retries and watches on its own, as a replica would. The worker's ASGI start-up
waits for that first load (:class:`~fraudrisk.serving.asgi.ScorerApp`), so it accepts no
connection before it can answer, and its readiness is its own model's.

Per-variant metrics add up over the workers through ``prometheus_client``'s multiprocess mode:
each process writes its samples under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kserve.protocol.rest.multiprocess.server import RESTServerMultiProcess, RESTServerProcess

from fraudrisk.config import Settings
from fraudrisk.scoring.state_reader import StateReader
from fraudrisk.serving import local
from fraudrisk.serving.kserve_model import FraudRiskModel, PolicyFactory
from fraudrisk.serving.variants import ServiceSpec

log = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: KServe pings a worker every 0.5 s and replaces one that does not answer within 5 s; a
#: spawned worker imports KServe and the scorer first (5-10 s on a busy node), so it is left
#: alone this long after its start (a worker that exits is still replaced at once).
STARTUP_GRACE_S = 120.0


@dataclass(frozen=True)
class StartBarrier:
    """Workers open the port together: each waits until all have loaded (or a timeout).

    A worker that starts listening first would take every keep-alive connection opened
    meanwhile and keep it; the others would idle behind it.
    """

    folder: Path
    parties: int

    def arrive(self) -> None:
        """Say this worker has loaded (or given up loading for now)."""
        (self.folder / f"worker-{os.getpid()}").touch()

    def wait(self, timeout_s: float) -> bool:
        """Wait until ``parties`` workers arrived; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while len(list(self.folder.glob("worker-*"))) < self.parties:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


@dataclass(frozen=True)
class WorkerStart:
    """What a worker process needs to bring up its own copy of the served model."""

    spec: ServiceSpec
    settings: Settings
    states: Callable[[Settings], StateReader]
    retry_seconds: float = 30.0
    manifest: Path | None = None
    manifest_text: str | None = None  # the manifest as the parent process read it
    barrier: StartBarrier | None = None
    policy_factory: PolicyFactory | None = None  # opens the live decision policy

    def start_model(self) -> FraudRiskModel:
        """This worker's model, loading (what an unpickled :class:`FraudRiskModel` becomes)."""
        return start_worker_model(self)


def start_worker_model(start: WorkerStart) -> FraudRiskModel:
    """The model of a worker process (called where it is unpickled): loading has begun.

    The load runs in a thread, so unpickling returns at once (KServe's parent pings each
    worker and replaces one that does not answer within 5 s); a failed load is retried every
    ``retry_seconds``; the manifest, if any, is watched once the first load has ended.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    model = FraudRiskModel(
        start.spec, start.settings, start.states, policy_factory=start.policy_factory
    )
    model.worker_start = start
    model.begin_load()
    threading.Thread(
        target=_bring_up, args=(model, start), name="model-loader", daemon=True
    ).start()
    return model


def _bring_up(model: FraudRiskModel, start: WorkerStart) -> None:
    loaded = model.load()
    if start.barrier is not None:
        start.barrier.arrive()
    if not loaded:
        model.keep_loading(start.retry_seconds)
    if start.manifest is not None:
        local.ManifestWatcher(start.manifest, model, seen=start.manifest_text).start()


def prepare_metrics_dir() -> Path:
    """An empty ``PROMETHEUS_MULTIPROC_DIR`` for the workers, exported to their environment.

    A directory the environment names is emptied of earlier runs' files (prometheus_client's
    rule); otherwise a temporary one is made and removed at exit.
    """
    named = os.environ.get(MULTIPROC_ENV)
    if named:
        folder = Path(named)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return folder
    folder = Path(tempfile.mkdtemp(prefix="fraudrisk-metrics-"))
    os.environ[MULTIPROC_ENV] = str(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def start_barrier(parties: int) -> StartBarrier:
    """A barrier for ``parties`` workers in a temporary folder removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="fraudrisk-workers-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return StartBarrier(folder, parties)


class PatientRESTServerMultiProcess(RESTServerMultiProcess):  # type: ignore[misc]  # untyped
    """KServe's worker supervisor, leaving a starting worker :data:`STARTUP_GRACE_S`."""

    def init_processes(self, sockets: list[Any]) -> None:
        """Start the workers (as KServe does), noting when."""
        super().init_processes(sockets)
        self._born = {p.pid: time.monotonic() for p in self._processes}

    async def keep_subprocess_alive(self, sockets: list[Any]) -> None:
        """Replace a worker that exited, or that stopped answering after its start-up."""
        for index, process in enumerate(self._processes):
            if self.should_exit.is_set():
                return  # shutting down: KServe terminates them
            starting = time.monotonic() - self._born.get(process.pid, 0.0) < STARTUP_GRACE_S
            if process._process.is_alive() and (starting or process.is_alive()):
                continue
            process.kill()
            await process.wait_for_termination()
            log.warning("worker process [%s] died or hung: starting another", process.pid)
            if self.should_exit.is_set():
                return
            replacement = RESTServerProcess(
                sockets, self._rest_server.run, log_config_file=self.log_config_file
            )
            replacement.start()
            self._processes[index] = replacement
            self._born[replacement.pid] = time.monotonic()
