"""Guards of the unit tests: ``tests/unit`` starts no subprocess.

A unit test runs in the pytest process: no child process (``subprocess``, ``multiprocessing``,
a CLI in a child interpreter, ``kfp.local``, Spark's JVM, servers such as uvicorn, KServe's
ModelServer, Kafka, PostgreSQL, Redis or moto). Tests that need one live in
``tests/integration/<package>/``. In-process stand-ins are fine: Starlette's ``TestClient``,
Typer's ``CliRunner``, SQLite, threads.

The package-scoped fixtures that tests of several packages share are registered here, once
for all of ``tests/unit``: ``served`` and ``monitored``, and the autouse
``mlflow_schema_template`` (new MLflow sqlite databases copied from one migrated once).
"""

from __future__ import annotations

import contextlib
import ctypes.util
import functools
import multiprocessing.process
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import threadpoolctl

#: One OpenMP thread per process. ``make test-fast`` runs two xdist workers on two cores;
#: XGBoost's OpenMP threads (``n_jobs=2``) spin-wait at each barrier for a sibling thread that
#: waits for a core the other worker (or any other process) holds: fits ran 4-10x slower in the
#: suite than alone (the ``first_run`` fixture of training/test_steps.py: 7 s alone, 35-80 s in
#: the suite). Set before the imports below load NumPy, scikit-learn and XGBoost, whose
#: runtimes read it when loaded (for every thread); ``threadpool_limits`` after them covers
#: runtimes an earlier conftest loaded. OMP_NUM_THREADS set by the caller wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from tests.unit.mlflow_schema import mlflow_schema_template  # noqa: F401  (autouse)
from tests.unit.monitoring.monitored import monitored  # noqa: F401  (monitoring, registry)
from tests.unit.scoring.served import served  # noqa: F401  (scoring, serving, release)

threadpoolctl.threadpool_limits(int(os.environ["OMP_NUM_THREADS"]))

RULE = "tests/unit starts no subprocess: move this test to tests/integration"


class SubprocessInUnitTestError(RuntimeError):
    """A unit test tried to start a child process."""


@dataclass
class SubprocessGuard:
    """What the guard refused during the current test (each attempt also fails the test)."""

    attempts: list[str] = field(default_factory=list)

    def refuse(self, what: str) -> Callable[..., Any]:
        def refused(*args: Any, **_kwargs: Any) -> Any:
            shown = args[1] if what == "subprocess.Popen" and len(args) > 1 else args[:1]
            message = f"{RULE} ({what} {shown!r})"
            self.attempts.append(message)
            raise SubprocessInUnitTestError(message)

        return refused


#: ``ctypes.util.find_library`` runs ``/sbin/ldconfig -p`` on each call; the scorer's tree walker
#: looks up libm on each model load (``fraudrisk.scoring.trees``). Its answers are the same for
#: the whole run: looked up once here, at import (outside any test), then from this cache.
_find_library = functools.cache(ctypes.util.find_library)
for _name in ("m", "c"):
    _find_library(_name)

#: GitPython (MLflow tags each run with the source's commit) runs ``git version`` once, when it
#: is first imported: imported here, outside any test.
with contextlib.suppress(ImportError):
    import git  # noqa: F401

#: MLflow tags a run with the git commit of the program's main file (``git check-ignore``), once
#: per process, when the first run starts: resolved here, outside any test.
with contextlib.suppress(ImportError):
    from mlflow.tracking.context.registry import resolve_tags

    resolve_tags()

#: Every way a child process is started from Python (``subprocess.run``/``call``/``check_*``,
#: ``os.popen`` and asyncio's subprocesses all go through ``Popen``).
_OS_SPAWNERS = ("posix_spawn", "posix_spawnp", "fork", "forkpty", "system")


_GUARD = pytest.StashKey[SubprocessGuard]()


def _guarded(item: pytest.Item) -> Iterator[None]:
    """Run one phase of a unit test with every process start refused.

    Around the setup, call and teardown phases rather than in a fixture: session- and
    package-scoped fixtures are set up in the setup phase of their first test, before any
    function-scoped fixture (a guard fixture would miss a broker started by one of them).
    """
    guard = item.stash.setdefault(_GUARD, SubprocessGuard())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ctypes.util, "find_library", _find_library)
        patch.setattr(subprocess.Popen, "__init__", guard.refuse("subprocess.Popen"))
        for name in _OS_SPAWNERS:
            if hasattr(os, name):
                patch.setattr(os, name, guard.refuse(f"os.{name}"))
        patch.setattr(
            multiprocessing.process.BaseProcess, "start", guard.refuse("multiprocessing start")
        )
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _guarded(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _guarded(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Guard the teardown too, except the session's last one.

    The last test's teardown also finalises the session-scoped fixtures of every test the
    worker ran, including services that integration tests started (PostgreSQL, Kafka) and that
    stop by running a command: that is not the unit test's doing.
    """
    if nextitem is None:
        return (yield)
    return (yield from _guarded(item))


@pytest.fixture(autouse=True)
def no_subprocess(request: pytest.FixtureRequest) -> Iterator[SubprocessGuard]:
    """The test's guard; fails the test if it tried to start a process, even if that was caught."""
    guard = request.node.stash.setdefault(_GUARD, SubprocessGuard())
    yield guard
    if guard.attempts:
        pytest.fail("\n".join(guard.attempts), pytrace=False)
