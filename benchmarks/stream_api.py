"""The sync API path of the stream benchmark: ``fraudrisk api serve`` under an open-loop load.

The API runs as shipped (one uvicorn worker, the model loaded at start, entity state read from
the Feast online store per request) in a subprocess on a free loopback port, with an API key
and a rate limit above the load. Single-transaction ``POST /v1/transactions?mode=sync`` requests
leave on a fixed schedule whatever the server does (no coordinated omission: latency counts from
the scheduled send time) over up to 32 keep-alive connections (aiohttp, uvloop).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from stream_measure import CpuMeter, Process

CONNECTIONS = 32
TIMEOUT_S = 5.0


@dataclass
class SyncResult:
    """Latencies of the measured requests (NaN = error) and the error kinds."""

    rate: float
    latency_s: np.ndarray
    errors: Counter[str]
    decisions: Counter[str]
    cpu: dict[str, float] = field(default_factory=dict)

    def percentile(self, q: float) -> float:
        """The q-th percentile of the successful requests, in ms."""
        ok = self.latency_s[~np.isnan(self.latency_s)]
        return float(np.percentile(ok, q) * 1e3) if len(ok) else float("nan")


def api_process(home: Path, port: int, log: Path) -> tuple[Process, str]:
    """The API subprocess (not started) and the API key it accepts."""
    import sys

    from fraudrisk.api.auth import hash_api_key, new_api_key

    key = new_api_key()
    keys = [{"client": "bench", "key_hash": hash_api_key(key), "scopes": ["transactions:write"]}]
    env = {
        "FRAUDRISK_HOME": str(home),
        "FRAUDRISK_API__DEFAULT_MODE": "sync",
        "FRAUDRISK_API__KAFKA_ENABLED": "false",
        "FRAUDRISK_API__KEYS": json.dumps(keys),
        "FRAUDRISK_API__RATE_PER_S": "100000",
        "FRAUDRISK_API__BURST": "100000",
    }
    argv = [sys.executable, "-m", "fraudrisk", "api", "serve", "--port", str(port)]
    return Process(argv, env, log), key


def wait_ready(url: str, process: Process, timeout_s: float = 180) -> None:
    """Wait until ``/readyz`` says the model is loaded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        process.check()
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(f"{url}/readyz", timeout=2) as response,
        ):
            if json.loads(response.read()).get("model") == "loaded":
                return
        time.sleep(0.3)
    raise TimeoutError(f"the API at {url} was not ready in {timeout_s} s; see {process.log}")


def request_bodies(rows: pa.Table) -> list[bytes]:
    """One single-transaction request body per row."""
    out = []
    for row in rows.to_pylist():
        row["tx_datetime"] = row["tx_datetime"].isoformat()
        out.append(orjson.dumps(row))
    return out


def run_sync_load(
    url: str, key: str, bodies: list[bytes], plan: tuple[float, float, float], pid: int
) -> SyncResult:
    """Open-loop load of ``(rate, warmup_s, duration_s)``; latency of the measured requests."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    with CpuMeter({"consumer": pid}) as meter:
        result: SyncResult = runner(_load(url, key, bodies, plan))
    result.cpu = meter.cores
    return result


async def _load(url: str, key: str, bodies: list[bytes], plan: tuple[float, float, float]) -> Any:
    import aiohttp

    rate, warmup_s, duration_s = plan
    total, warm = int(rate * (warmup_s + duration_s)), int(rate * warmup_s)
    latency = np.full(total, np.nan)
    errors: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    headers = {"Content-Type": "application/json", "X-API-Key": key}
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    target = f"{url}/v1/transactions?mode=sync"

    async def send(index: int, due: float, session: aiohttp.ClientSession) -> None:
        try:
            async with session.post(target, data=bodies[index % len(bodies)]) as response:
                payload = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as error:
            errors[type(error).__name__] += index >= warm
            return
        if status != 200:
            errors[f"HTTP {status}"] += index >= warm
            return
        latency[index] = time.perf_counter() - due
        decisions[orjson.loads(payload)["decision"]] += 1

    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:
        tasks = set()
        start = time.perf_counter() + 0.01
        for index in range(total):
            due = start + index / rate
            wait = due - 0.001 - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            task = asyncio.create_task(send(index, min(due, time.perf_counter()), session))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=TIMEOUT_S + 1)
    return SyncResult(rate, latency[warm:], errors, decisions)
