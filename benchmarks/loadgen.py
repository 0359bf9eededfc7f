"""An open-loop HTTP load generator for single-transaction V2 inference requests.

Requests leave on a fixed schedule (``rate`` per second for ``warmup + duration`` seconds),
whatever the server does: a slow response never delays the next send, so latency is not
hidden by coordinated omission. A request's latency is measured from its *scheduled* send
time (or from the moment it actually left, when the scheduler fired it up to
:data:`EARLY_S` early to absorb the event loop's millisecond timer granularity) to the end of
its response body, so time spent waiting for a pooled connection or behind a late scheduler
counts. Requests go over a bounded pool of keep-alive connections (aiohttp, uvloop when
installed). The run is bounded in count (``rate x (warmup + duration)`` requests, at most
``max_outstanding`` in flight: beyond that a request is counted ``overload``), and in time
(each request has ``timeout_s``; the stragglers are cancelled after it). Only requests
scheduled after the warm-up are measured.

Usage from code::

    plan = LoadPlan(rate=300, duration_s=30, warmup_s=5)
    result = run_load("http://127.0.0.1:8080/v2/models/fraud-risk/infer", bodies, plan)
    result.summary()  # {"p50_ms": ..., "p99_ms": ..., "achieved_rps": ..., "errors": ...}
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

#: How early the scheduler may fire a request (the loop's timers have millisecond resolution).
EARLY_S = 0.001
#: Lake columns a V2 request carries.
TRANSACTION_COLUMNS = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount")


@dataclass(frozen=True)
class LoadPlan:
    """A fixed-rate, fixed-duration open-loop run."""

    rate: float
    duration_s: float
    warmup_s: float = 2.0
    timeout_s: float = 5.0
    connections: int = 64
    max_outstanding: int = 2000

    @property
    def total(self) -> int:
        """Requests scheduled, warm-up included."""
        return round(self.rate * (self.warmup_s + self.duration_s))

    @property
    def warm(self) -> int:
        """Requests of the warm-up (not measured)."""
        return round(self.rate * self.warmup_s)


@dataclass
class LoadResult:
    """What a run measured (only requests scheduled after the warm-up)."""

    plan: LoadPlan
    latency_s: npt.NDArray[np.float64]  # one per measured request, NaN = error
    errors: Counter[str] = field(default_factory=Counter)
    lag_s: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    window_s: float = 0.0
    client_cpu: float = 0.0
    other_cores: float = float("nan")  # CPU other processes used meanwhile (set by the caller)
    server_cpu_ms: float = float("nan")  # server CPU per request sent (set by the caller)

    @property
    def ok(self) -> npt.NDArray[np.float64]:
        """Latencies of the successful measured requests."""
        return self.latency_s[~np.isnan(self.latency_s)]

    def summary(self) -> dict[str, float]:
        """Percentiles (ms), achieved rate, error count, scheduler lag and client CPU share."""
        ok = self.ok * 1e3
        stats = (
            dict(zip(("p50_ms", "p90_ms", "p99_ms"), np.percentile(ok, [50, 90, 99]), strict=True))
            if len(ok)
            else {"p50_ms": np.nan, "p90_ms": np.nan, "p99_ms": np.nan}
        )
        return {
            "rate": self.plan.rate,
            **{key: float(value) for key, value in stats.items()},
            "max_ms": float(ok.max()) if len(ok) else np.nan,
            "achieved_rps": len(ok) / self.window_s if self.window_s else 0.0,
            "measured": float(len(self.latency_s)),
            "errors": float(sum(self.errors.values())),
            "lag_p99_ms": float(np.percentile(self.lag_s, 99) * 1e3) if len(self.lag_s) else 0.0,
            "client_cpu": self.client_cpu,
            "server_cpu_ms": self.server_cpu_ms,
            "other_cores": self.other_cores,
        }


class _Recorder:
    """Collects outcomes by request index."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self.latency = np.full(plan.total, np.nan)
        self.lag = np.zeros(plan.total)
        self.errors: Counter[str] = Counter()
        self.outstanding = 0
        self.last_done = 0.0

    def error(self, index: int, kind: str) -> None:
        if index >= self.plan.warm:
            self.errors[kind] += 1

    def done(self, index: int, latency: float, now: float) -> None:
        self.latency[index] = latency
        self.last_done = max(self.last_done, now)


async def _send(
    session: Any, url: str, body: bytes, index: int, origin: float, rec: _Recorder
) -> None:
    """One request: POST, read the whole body, record latency from ``origin``."""
    import aiohttp

    try:
        async with session.post(url, data=body) as response:
            payload = await response.read()
            status = response.status
    except TimeoutError:
        rec.error(index, "timeout")
    except aiohttp.ClientError as error:
        rec.error(index, type(error).__name__)
    else:
        now = time.perf_counter()
        if status != 200:
            rec.error(index, f"HTTP {status}")
        elif b'"outputs"' not in payload:
            rec.error(index, "no outputs")
        else:
            rec.done(index, now - origin, now)
    finally:
        rec.outstanding -= 1


async def _schedule(session: Any, url: str, bodies: Sequence[bytes], rec: _Recorder) -> float:
    """Fire every request of the plan on time; returns the first measured send time."""
    plan = rec.plan
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter() + 0.01
    first_measured = start + plan.warm / plan.rate
    for index in range(plan.total):
        due = start + index / plan.rate
        wait = due - EARLY_S - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        now = time.perf_counter()
        rec.lag[index] = max(0.0, now - due)
        if rec.outstanding >= plan.max_outstanding:
            rec.error(index, "overload")
            continue
        body = bodies[index % len(bodies)]
        rec.outstanding += 1  # released by _send
        task = asyncio.create_task(_send(session, url, body, index, min(due, now), rec))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        _, late = await asyncio.wait(set(tasks), timeout=plan.timeout_s + 1.0)
        for task in late:
            task.cancel()
    return first_measured


async def _run(url: str, bodies: Sequence[bytes], plan: LoadPlan) -> LoadResult:
    import aiohttp

    rec = _Recorder(plan)
    connector = aiohttp.TCPConnector(limit=plan.connections, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=plan.timeout_s)
    headers = {"Content-Type": "application/json"}
    cpu, began = time.process_time(), time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as s:
        first_measured = await _schedule(s, url, bodies, rec)
    client_cpu = (time.process_time() - cpu) / max(time.perf_counter() - began, 1e-9)
    measured = slice(plan.warm, plan.total)
    lost = int(np.isnan(rec.latency[measured]).sum()) - sum(rec.errors.values())
    if lost > 0:  # cancelled after the drain deadline
        rec.errors["timeout"] += lost
    return LoadResult(
        plan=plan,
        latency_s=rec.latency[measured],
        errors=rec.errors,
        lag_s=rec.lag[measured],
        window_s=max(rec.last_done - first_measured, 1e-9),
        client_cpu=client_cpu,
    )


def run_load(url: str, bodies: Sequence[bytes], plan: LoadPlan) -> LoadResult:
    """Run one open-loop load against ``url`` with request bodies taken in turn.

    Args:
        url: The inference endpoint (``http://127.0.0.1:PORT/v2/models/NAME/infer``).
        bodies: Pre-encoded JSON request bodies, used round-robin.
        plan: Rate, duration, warm-up and bounds.

    Returns:
        The measured run.
    """
    try:
        import uvloop

        return uvloop.run(_run(url, bodies, plan))
    except ImportError:
        return asyncio.run(_run(url, bodies, plan))


def v2_body(row: dict[str, Any]) -> bytes:
    """The V2 request of one lake transaction (one input tensor per field, shape [1])."""
    stamp = row["tx_datetime"]
    if isinstance(stamp, dt.datetime):
        stamp = stamp.replace(tzinfo=None).isoformat()
    inputs = [
        _tensor("transaction_id", "INT64", int(row["transaction_id"])),
        _tensor("tx_datetime", "BYTES", str(stamp)),
        _tensor("customer_id", "INT64", int(row["customer_id"])),
        _tensor("terminal_id", "INT64", int(row["terminal_id"])),
        _tensor("tx_amount", "FP64", float(row["tx_amount"])),
    ]
    return json.dumps({"inputs": inputs}, separators=(",", ":")).encode()


def _tensor(name: str, datatype: str, value: Any) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": [1], "data": [value]}


def lake_bodies(lake_uri: str, days: int = 7, limit: int = 20_000, seed: int = 0) -> list[bytes]:
    """V2 bodies of real transactions of the lake's last ``days`` days, in a seeded order.

    Args:
        lake_uri: The transaction lake.
        days: How many of the last days to draw from.
        limit: At most this many distinct bodies (a run reuses them round-robin).
        seed: Seed of the shuffle (the same for every system measured).

    Returns:
        Pre-encoded request bodies.

    Raises:
        ValueError: If the lake holds no transactions.
    """
    from fraudrisk.io.lake import Lake

    lake = Lake.open(lake_uri)
    present = lake.days()
    if not present:
        raise ValueError(f"the lake {lake_uri} holds no transactions")
    last = present[-1]
    rows = lake.read_days(last - dt.timedelta(days=days - 1), last, TRANSACTION_COLUMNS)
    order = np.random.default_rng(seed).permutation(rows.num_rows)[:limit]
    return [v2_body(row) for row in rows.take(order).to_pylist()]


# --------------------------------------------------------------------- servers under load
@dataclass(frozen=True)
class Command:
    """A server process: argv, extra environment, readiness URL (200 = ready), directory."""

    argv: list[str]
    env: dict[str, str]
    ready_url: str
    cwd: Path | None = None


class ServerGroup:
    """Processes started in order (each ready before the next), stopped in reverse order.

    Each runs in its own session so that it and its children are stopped together; output
    goes to one log file. A process that exits or is not ready within ``ready_timeout_s``
    stops the group with the log's tail in the error.
    """

    def __init__(self, commands: Sequence[Command], log: Path, ready_timeout_s: float = 240.0):
        """Prepare the group; nothing starts before ``__enter__``."""
        self.commands, self.log, self.timeout = list(commands), log, ready_timeout_s
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def pids(self) -> list[int]:
        """Process ids of the started processes."""
        return [process.pid for process in self.processes]

    def __enter__(self) -> ServerGroup:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        try:
            for command in self.commands:
                self._start(command)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _start(self, command: Command) -> None:
        with self.log.open("ab") as sink:
            process = subprocess.Popen(
                command.argv,
                env={**os.environ, **command.env},
                cwd=command.cwd,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        deadline = time.monotonic() + self.timeout
        while not _answers_200(command.ready_url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
                state = f"exited {process.returncode}" if process.poll() is not None else "late"
                raise RuntimeError(f"{command.argv[:3]} not ready ({state}); log:\n{tail}")
            time.sleep(0.25)

    def stop(self) -> None:
        """SIGTERM each process group (reverse order), SIGKILL what is left after 15 s."""
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


def _answers_200(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


_BUSY = ("user", "nice", "system", "irq", "softirq", "steal")  # guest time is inside user


class Contention:
    """CPU time of the servers under test, and of *other* processes, while a block runs.

    ``server_cpu_s`` is the CPU time of the server processes ``pids`` and their children;
    ``other_cores`` is the machine's busy CPU time minus theirs and this process's, divided by
    the wall time: the shared machine's noise, in cores. NaN when psutil is not installed.
    """

    def __init__(self, pids: Sequence[int]) -> None:
        """Watch the servers ``pids`` (and their children)."""
        self.pids = list(pids)
        self.other_cores = self.server_cpu_s = float("nan")
        self._began = (0.0, 0.0, 0.0, 0.0)

    def _sample(self) -> tuple[float, float, float, float]:
        import psutil  # type: ignore[import-untyped]

        seen: dict[int, float] = {}
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(pid)
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        times = proc.cpu_times()
                        seen[proc.pid] = times.user + times.system
        me = psutil.Process().cpu_times()
        cpu = psutil.cpu_times()
        busy = sum(getattr(cpu, name, 0.0) for name in _BUSY)
        return time.perf_counter(), busy, sum(seen.values()), me.user + me.system

    def __enter__(self) -> Contention:
        with contextlib.suppress(ImportError):
            self._began = self._sample()
        return self

    def __exit__(self, *_exc: object) -> None:
        with contextlib.suppress(ImportError):
            end = self._sample()
            wall, busy, servers, me = (b - a for a, b in zip(self._began, end, strict=True))
            self.server_cpu_s = servers
            self.other_cores = max(0.0, (busy - servers - me) / wall) if wall > 0 else np.nan
