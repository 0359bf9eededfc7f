"""Several workers: the model travels as its start recipe, loads on its own, waits for its peers.

What KServe's multi-process mode does with a model is pickle it into each spawned worker; here
the pickle round trip runs in-process and the result must load, serve the same scores and
follow its manifest. The patient supervisor is checked with stand-in worker processes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import pickle
import time
from pathlib import Path
from typing import ClassVar

import pytest
from tests.unit.scoring.served import Served
from tests.unit.serving.test_kserve_model import instances

from fraudrisk.scoring.state_reader import MemoryStateReader
from fraudrisk.serving import workers
from fraudrisk.serving.kserve_model import FraudRiskModel, ServiceSpec
from fraudrisk.serving.workers import StartBarrier, WorkerStart, prepare_metrics_dir


def same_reader(reader: MemoryStateReader, _settings: object) -> MemoryStateReader:
    return reader


def recipe(served: Served, barrier: StartBarrier | None = None, **extra: object) -> WorkerStart:
    states = functools.partial(same_reader, served.states)
    spec = ServiceSpec("models:/fraud-risk@champion")
    return WorkerStart(spec, served.settings, states, barrier=barrier, **extra)


def test_a_model_without_a_recipe_is_not_sent_to_workers(served: Served) -> None:
    model = FraudRiskModel(ServiceSpec("models:/fraud-risk@champion"), served.settings)
    with pytest.raises(TypeError, match="serve it with one worker"):
        pickle.dumps(model)


def test_a_worker_loads_its_own_copy_and_answers_the_same(served: Served, tmp_path: Path) -> None:
    original = FraudRiskModel(
        ServiceSpec("models:/fraud-risk@champion"),
        served.settings,
        states=functools.partial(same_reader, served.states),
    )
    original.worker_start = recipe(served, StartBarrier(tmp_path, parties=1))
    copy = pickle.loads(pickle.dumps(original))  # what a spawned worker gets
    assert isinstance(copy, FraudRiskModel) and copy is not original
    assert copy.load_began and copy.wait_until_serving(timeout_s=120)
    assert copy.ready and list(tmp_path.glob("worker-*"))
    assert original.load()
    body = instances(served, 5)
    assert copy.predict(body) == original.predict(body)


def test_a_worker_that_cannot_load_serves_unready_and_keeps_trying(served: Served) -> None:
    states = functools.partial(same_reader, served.states)
    spec = ServiceSpec("models:/fraud-risk@nobody")
    start = WorkerStart(spec, served.settings, states, retry_seconds=3600)
    model = workers.start_worker_model(start)
    assert model.wait_until_serving(timeout_s=120)
    assert not model.ready and "has no alias @nobody" in model.load_error


def test_a_worker_follows_the_manifest_its_parent_read(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest edited while the worker started is applied: it compares with the parent's."""
    followed: list[Path] = []

    class Watcher:
        def __init__(self, path: Path, model: FraudRiskModel, seen: str | None = None) -> None:
            self.path, self.seen = path, seen

        def start(self) -> None:
            followed.append(self.path)
            assert self.seen == "as the parent read it"

    monkeypatch.setattr("fraudrisk.serving.local.ManifestWatcher", Watcher)
    manifest = tmp_path / "isvc.yaml"
    manifest.write_text("changed since")
    model = workers.start_worker_model(
        recipe(served, manifest=manifest, manifest_text="as the parent read it")
    )
    assert model.wait_until_serving(timeout_s=120)
    deadline = time.monotonic() + 10
    while not followed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert followed == [manifest]


def test_workers_open_together(tmp_path: Path) -> None:
    barrier = StartBarrier(tmp_path, parties=2)
    barrier.arrive()
    assert not barrier.wait(timeout_s=0.2)  # the other worker is still loading
    (tmp_path / "worker-999999").touch()
    assert barrier.wait(timeout_s=0.2)


def test_the_metrics_folder_starts_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = tmp_path / "metrics"
    named.mkdir()
    (named / "counter_123.db").write_bytes(b"old run")
    monkeypatch.setenv(workers.MULTIPROC_ENV, str(named))
    assert prepare_metrics_dir() == named and not list(named.iterdir())
    monkeypatch.delenv(workers.MULTIPROC_ENV)
    made = prepare_metrics_dir()
    assert made.is_dir() and os.environ[workers.MULTIPROC_ENV] == str(made)


class FakeWorker:
    """A stand-in for KServe's ``RESTServerProcess``."""

    started: ClassVar[list[FakeWorker]] = []

    def __init__(self, *_args: object, alive: bool = True, answers: bool = True, **_kw: object):
        self.pid = 1000 + len(FakeWorker.started)
        self.alive, self.answers, self.killed, self.pinged = alive, answers, False, 0
        self._process = type("Process", (), {"is_alive": lambda _p: self.alive})()
        FakeWorker.started.append(self)

    def is_alive(self, timeout: float = 5) -> bool:
        """KServe's check: the process runs and answers a ping."""
        if not self.alive:
            return False
        self.pinged += 1
        return self.answers

    def kill(self) -> None:
        self.killed, self.alive = True, False

    async def wait_for_termination(self, grace_period: float | None = None) -> None:
        return None

    def start(self) -> None:
        return None


def test_the_supervisor_leaves_starting_workers_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "RESTServerProcess", FakeWorker)
    supervisor = workers.PatientRESTServerMultiProcess.__new__(
        workers.PatientRESTServerMultiProcess
    )
    supervisor.should_exit, supervisor.log_config_file = asyncio.Event(), None
    supervisor._rest_server = type("Rest", (), {"run": None})()
    starting, dead, hung = (
        FakeWorker(answers=False),
        FakeWorker(alive=False),
        FakeWorker(answers=False),
    )
    supervisor._processes = [starting, dead, hung]
    now = time.monotonic()
    supervisor._born = {starting.pid: now, dead.pid: now, hung.pid: now - 1e6}
    asyncio.run(supervisor.keep_subprocess_alive([]))
    assert not starting.killed and starting.pinged == 0  # still importing: not pinged
    assert dead.killed and hung.killed
    assert supervisor._processes[0] is starting
    assert {p.pid for p in supervisor._processes[1:]}.isdisjoint({dead.pid, hung.pid})
