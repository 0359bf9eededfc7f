"""Sync-mode request latency with the alert-store writer on, against the writer off (baseline).

Two ``fraudrisk api serve`` processes run as shipped (one uvicorn worker each, sync mode, Kafka
off) on free loopback ports, in the same run: one with ``FRAUDRISK_API__STORE_SCORES=false``
(the baseline), one with the writer on. The load alternates between them in slices (off, on,
on, off, off, on, …), so that whatever else the shared machine does falls on both alike; only
one of them is loaded at a time, with a pause between slices for the writer's last flush.
Single-transaction ``POST /v1/transactions?mode=sync`` requests leave on a fixed schedule from
the open-loop client of ``stream_api.py`` (latency from the scheduled send time: no coordinated
omission) — a bounded number, each a new transaction id, half of them alerts.

The writer's store is SQLite in the benchmark's work folder by default, or a throw-away
PostgreSQL cluster on loopback (``--postgres``, Debian's binaries). With ``--home`` the API
scores with that home's champion and online store (e.g. after ``make demo``; the store and the
spool stay in the work folder); by default a fresh home, where the fallback rules decide (the
cheapest request, so the writer's share is the largest). The writer must have stored every
transaction it answered by its shutdown. Target: its p50 within 10 % of the baseline's.

Usage:
    python benchmarks/api_store_sink.py
    python benchmarks/api_store_sink.py --slices 12 --per-slice 1000 --rate 300 --postgres
    python benchmarks/api_store_sink.py --home .fraudrisk
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from fraudrisk.api.auth import hash_api_key, new_api_key
from fraudrisk.io.kafka_broker import free_port
from fraudrisk.io.local_postgres import local_postgres
from stream_api import SyncResult, run_sync_load
from stream_measure import Process, load_line

P50_RATIO_TARGET = 1.10
AMOUNTS = (35.0, 260.0, 1500.0, 80.0)  # approve, review, decline, approve by the rules
console = Console(stderr=True)


@dataclass
class Server:
    """One API process under load and what its slices measured."""

    writer: bool
    url: str
    key: str
    process: Process
    slices: list[SyncResult] = field(default_factory=list)
    answered: int = 0
    stored_live: int = 0  # in the store once the load ended (before the shutdown's flush)
    stored: int = 0  # in the store after the shutdown

    @property
    def name(self) -> str:
        """How the table names it."""
        return "writer on" if self.writer else "writer off (baseline)"

    def latency_ms(self) -> np.ndarray:
        """The successful measured requests of every slice, in ms."""
        pooled = np.concatenate([s.latency_s for s in self.slices]) * 1e3
        return pooled[~np.isnan(pooled)]

    def errors(self) -> int:
        """Failed measured requests of every slice."""
        return sum(sum(s.errors.values()) for s in self.slices)

    def mean_cores(self, who: str) -> float:
        """Cores used by ``who`` (``consumer``: this server; ``other``: the rest), per slice."""
        return float(np.mean([s.cpu.get(who, np.nan) for s in self.slices]))


def bodies(first_id: int, count: int) -> list[bytes]:
    """``count`` single-transaction bodies of new ids from ``first_id``."""
    return [
        orjson.dumps(
            {
                "transaction_id": first_id + i,
                "tx_datetime": f"2024-05-0{1 + i % 7}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}",
                "customer_id": i % 5000,
                "terminal_id": i % 10_000,
                "tx_amount": AMOUNTS[i % 4],
            }
        )
        for i in range(count)
    ]


def api_env(home: Path, db_url: str, key: str, writer: bool, spool: Path) -> dict[str, str]:
    """The API's environment: sync by default, Kafka off, limits above the load."""
    keys = [{"client": "bench", "key_hash": hash_api_key(key), "scopes": ["transactions:write"]}]
    return {
        "FRAUDRISK_HOME": str(home),
        "FRAUDRISK_DB__URL": db_url,
        "FRAUDRISK_API__DEFAULT_MODE": "sync",
        "FRAUDRISK_API__KAFKA_ENABLED": "false",
        "FRAUDRISK_API__KEYS": json.dumps(keys),
        "FRAUDRISK_API__RATE_PER_S": "100000",
        "FRAUDRISK_API__BURST": "100000",
        "FRAUDRISK_API__MODEL_RETRY_S": "600",
        "FRAUDRISK_API__STORE_SCORES": "true" if writer else "false",
        "FRAUDRISK_API__STORE_SPOOL_DIR": str(spool),
    }


@contextlib.contextmanager
def served(args: argparse.Namespace, work: Path, db_url: str, writer: bool) -> Iterator[Server]:
    """An API process, ready; stopped (SIGTERM: the writer flushes) when the block ends."""
    port, key = free_port(), new_api_key()
    home = args.home.resolve() if args.home else work / "home"
    tag = "on" if writer else "off"
    env = api_env(home, db_url, key, writer, work / f"spool-{tag}")
    argv = [sys.executable, "-m", "fraudrisk", "api", "serve", "--port", str(port)]
    with Process(argv, env, work / f"api-{tag}.log") as process:
        server = Server(writer, f"http://127.0.0.1:{port}", key, process)
        wait_ready(server)
        yield server


def wait_ready(server: Server, timeout_s: float = 180) -> None:
    """Until ``/readyz`` answers 200 (a model loaded, or the fallback rules)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        server.process.check()
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(f"{server.url}/readyz", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{server.url} was not ready in {timeout_s} s; see {server.process.log}")


def scored_count(server: Server) -> int:
    """Transactions the API answered in sync mode (its own counter)."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith('fraudrisk_api_transactions_total{mode="sync"}'):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def stored_count(db_url: str) -> int:
    """Rows of ``scores`` (0 before the table exists)."""
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT count(*) FROM scores").scalar_one())
    except sa.exc.DBAPIError:
        return 0
    finally:
        engine.dispose()


def abba(slices: int) -> list[bool]:
    """Whether each slice loads the writer's server (off, on, on, off, off, on, on, …)."""
    return [(n % 4) in (1, 2) for n in range(slices)]


def run_slices(args: argparse.Namespace, servers: dict[bool, Server]) -> None:
    """Load the two servers in turn, one slice at a time."""
    warmup_s, duration_s = args.warmup / args.rate, args.per_slice / args.rate
    per_slice = args.warmup + args.per_slice
    for n, writer in enumerate(abba(args.slices)):
        server = servers[writer]
        sent = bodies(1 + n * per_slice, per_slice)
        plan = (args.rate, warmup_s, duration_s)
        result = run_sync_load(server.url, server.key, sent, plan, server.process.pid)
        server.slices.append(result)
        console.print(
            f"slice {n + 1}/{args.slices} {server.name}: p50 {result.percentile(50):.2f} ms, "
            f"other processes {result.cpu.get('other', float('nan')):.2f} cores"
        )
        time.sleep(args.pause)  # the writer's last flush stays in its own slice


@contextlib.contextmanager
def database(args: argparse.Namespace, work: Path) -> Iterator[str]:
    """The store's URL: SQLite in ``work`` or a throw-away PostgreSQL cluster."""
    if not args.postgres:
        yield f"sqlite:///{work / 'alerts.db'}"
        return
    with local_postgres(("alerts",)) as server:
        yield server.replace("postgresql://", "postgresql+psycopg://") + "/alerts"


def report(servers: dict[bool, Server], args: argparse.Namespace) -> bool:
    """Print the table; whether the target is met and every answer of the writer stored."""
    table = Table(title="Sync-mode request latency: alert-store writer on vs off (baseline)")
    columns = ("server", "requests", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors")
    for column in (*columns, "API cores", "other cores", "stored live / at stop"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for server in (servers[False], servers[True]):
        ms = server.latency_ms()
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        stored = f"{server.stored_live:,} / {server.stored:,} of {server.answered:,}"
        table.add_row(
            server.name,
            f"{len(ms):,}",
            f"{p50:.2f}",
            f"{p90:.2f}",
            f"{p99:.2f}",
            f"{ms.max():.1f}",
            str(server.errors()),
            f"{server.mean_cores('consumer'):.2f}",
            f"{server.mean_cores('other'):.2f}",
            stored if server.writer else "—",
        )
    on, off = (float(np.percentile(servers[w].latency_ms(), 50)) for w in (True, False))
    ratio, store = on / off, "PostgreSQL" if args.postgres else "SQLite"
    met = ratio <= P50_RATIO_TARGET
    table.caption = (
        f"p50 {on:.2f} vs {off:.2f} ms: x{ratio:.3f} (target <= x{P50_RATIO_TARGET:.2f}: "
        f"{'met' if met else 'NOT met'}); {args.slices} alternating slices of "
        f"{args.per_slice:,} requests at {args.rate:g}/s; store {store}; "
        f"{'model of ' + str(args.home) if args.home else 'fallback rules'}"
    )
    Console(width=150).print(table)
    writer = servers[True]
    complete = writer.stored == writer.answered
    if not complete:
        console.print(f"[red]{writer.answered - writer.stored} answered transactions not stored")
    return met and complete


def main(argv: list[str] | None = None) -> int:
    """Run the slices; exit 1 if the target is missed or an answer was not stored."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=8, help="alternating slices (ABBA…)")
    parser.add_argument("--per-slice", type=int, default=1000, help="measured requests each")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests each")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between slices")
    parser.add_argument("--postgres", action="store_true", help="a PostgreSQL store")
    parser.add_argument("--home", type=Path, help="a home with a champion (default: rules)")
    args = parser.parse_args(argv)
    console.print(f"[bold]alert-store writer benchmark[/]: {load_line()}")
    with tempfile.TemporaryDirectory(prefix="fraudrisk-bench-sink-") as folder:
        work = Path(folder)
        with database(args, work) as db_url:
            with served(args, work, db_url, False) as off, served(args, work, db_url, True) as on:
                servers = {False: off, True: on}
                run_slices(args, servers)
                on.stored_live = stored_count(db_url)
                on.answered = scored_count(on)
            on.stored = stored_count(db_url)  # after both shut down
    console.print(load_line())
    return 0 if report(servers, args) else 1


if __name__ == "__main__":
    raise SystemExit(main())
