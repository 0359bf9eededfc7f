"""``make demo`` step 7: the test week through the Transaction API, Kafka and the stream scorer.

An embedded Kafka broker (KRaft), the stream scorer (``fraudrisk stream score``) and the
Transaction API in async mode (``fraudrisk api serve``: API → transactions topic → scorer) run
as subprocesses on free loopback ports. The lake's last 7 days are sent through the API in
authenticated batches; once every transaction is in the alert store, the throughput, the alerts
by decision and the top alerts with their reason codes are printed, and the stream's scores are
checked against the offline feature table's. Everything is stopped on the way out.

**Entity state.** The online store (step 4) holds state as of the lake's end: it already holds
the week's own transactions, and it is pruned to the horizons before the end, so the windows of
the week's first days would miss their start. The scorer therefore rebuilds its state from the
lake days before the week (``--lake-state-before``: every transaction and label, as the offline
feature table has them) and learns the week from the stream itself, in order, as it would have
live — so each transaction's features see exactly its own past, and the stream's scores must
equal the offline ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import sqlalchemy as sa
from rich.table import Table

from fraudrisk.alerts.store import SCORES, AlertStore
from fraudrisk.api.auth import SCOPE_WRITE, hash_api_key, new_api_key
from fraudrisk.config import Settings
from fraudrisk.console import console
from fraudrisk.features.table import FeatureTable
from fraudrisk.io.kafka import ensure_topics
from fraudrisk.io.kafka_broker import LocalKafkaBroker, free_port
from fraudrisk.io.lake import Lake
from fraudrisk.scoring.model import load_model
from fraudrisk.vocab import APPROVE, DECLINE, REVIEW

#: Transactions per API request (the API's default limit is 1,000).
REQUEST_SIZE = 1_000
#: At most this many transactions of the week are sent (the step must stay ~2 minutes).
MAX_TRANSACTIONS = 100_000
#: Longest wait for the last score after the last request.
SCORE_TIMEOUT_S = 180.0
COLUMNS = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]


@dataclass(frozen=True)
class Week:
    """The transactions sent: the first ``len(rows)`` of the lake's last 7 days."""

    rows: pa.Table
    first: dt.date
    last: dt.date
    available: int


def run_stream_step(
    settings: Settings,
    table_uri: str,
    max_transactions: int = MAX_TRANSACTIONS,
    then: Callable[[StreamOutcome], bool] | None = None,
) -> bool:
    """Step 7: replay the test week through the API into the stream scorer; True when all scored.

    Args:
        settings: The demo's settings (HOME with the lake, the feature table and a champion).
        table_uri: The offline feature table (for the online = offline check).
        max_transactions: Send at most this many transactions of the week.
        then: A next step run while the broker is still up (the cases step), on success.
    """
    console.rule("[bold]7. stream: the test week through the API (async) → Kafka → stream scorer")
    week = test_week(settings, max_transactions)
    work = settings.home / "stream-demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with _services(settings, work, week.first) as services:
        sent_s = _send(services, week)
        scored, waited = _wait_scored(services, week.rows.num_rows)
        for process in (services.api, services.scorer):  # the scorer prints its summary at exit
            stop_process(process)
        _report(settings, table_uri, services, week, (scored, sent_s + waited))
        done = scored == week.rows.num_rows
        outcome = StreamOutcome(services.store_url, services.bootstrap, work, week)
        return bool(done and (then is None or then(outcome)))


@dataclass(frozen=True)
class StreamOutcome:
    """What the step leaves to the next one: its alert store, its running broker, its folder."""

    store_url: str
    bootstrap: str
    work: Path
    week: Week


def _report(
    settings: Settings,
    table_uri: str,
    services: _Services,
    week: Week,
    scored_in: tuple[int, float],
) -> None:
    """Throughput, decisions, top alerts and the online = offline check."""
    scored, seconds = scored_in
    scorer_line = _last_line(services.logs / "scorer.log", "consumed ")
    console.print(
        f"scored {scored:,} of {week.rows.num_rows:,} in {seconds:.1f} s end to "
        f"end ({scored / max(seconds, 1e-9):,.0f} tx/s); "
        f"stream scorer: {scorer_line or 'no summary'}"
    )
    store = AlertStore(services.store_url)
    try:
        _print_decisions(store)
        _print_top_alerts(store)
        _print_agreement(settings, table_uri, store, week.rows)
    finally:
        store.close()
    console.print(f"logs: {services.logs}/{{broker,scorer,api}}.log")


def test_week(settings: Settings, max_transactions: int) -> Week:
    """The lake's last 7 days in time order, at most ``max_transactions`` of them."""
    lake = Lake.open(settings.lake_uri, settings.lake)
    days = lake.days()
    if not days:
        raise RuntimeError(f"the lake {settings.lake_uri} holds no transactions")
    first, last = days[max(len(days) - 7, 0)], days[-1]
    rows = lake.read_days(first, last, COLUMNS)
    rows = rows.sort_by([("tx_datetime", "ascending"), ("transaction_id", "ascending")])
    return Week(rows.slice(0, max_transactions), first, last, rows.num_rows)


@dataclass
class _Services:
    """The running broker, scorer and API of the step."""

    broker: Any
    scorer: subprocess.Popen[bytes]
    api: subprocess.Popen[bytes]
    url: str
    api_key: str
    store_url: str
    logs: Path
    bootstrap: str

    def check(self) -> None:
        """Raise with the log's tail if the scorer or the API exited."""
        for name, process in (("scorer", self.scorer), ("api", self.api)):
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the {name} exited ({process.returncode}):\n{tail}")


@contextlib.contextmanager
def _services(settings: Settings, work: Path, week_start: dt.date) -> Iterator[_Services]:
    """Kafka, the scorer and the API on free loopback ports; all stopped on the way out."""
    broker = LocalKafkaBroker()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with console.status("starting the Kafka broker (KRaft)"):
            bootstrap = broker.start(data_dir=work / "kafka")
        kafka = settings.kafka.model_copy(update={"bootstrap_servers": bootstrap})
        ensure_topics(kafka)
        console.print(
            f"Kafka broker (KRaft) at {bootstrap}: topics {kafka.transactions_topic}, "
            f"{kafka.scores_topic}, {kafka.alerts_topic}, {kafka.dlq_topic}"
        )
        key, port, store_url = new_api_key(), free_port(), f"sqlite:///{work / 'alerts.db'}"
        keys = [{"client": "demo", "key_hash": hash_api_key(key), "scopes": [SCOPE_WRITE]}]
        env = {
            "FRAUDRISK_HOME": str(settings.home),
            "FRAUDRISK_DB__URL": store_url,
            "FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "FRAUDRISK_API__DEFAULT_MODE": "async",
            "FRAUDRISK_API__KEYS": json.dumps(keys),
        }
        scorer = [
            sys.executable,
            "-m",
            "fraudrisk",
            "stream",
            "score",
            "--group",
            "demo",
            "--transactional-id",
            "demo-0",
            "--lake-state-before",
            str(week_start),
        ]
        processes.append(start_logged(scorer, env, work / "scorer.log"))
        api = [sys.executable, "-m", "fraudrisk", "api", "serve", "--port", str(port)]
        processes.append(start_logged(api, env, work / "api.log"))
        console.print(
            f"stream scorer: entity state rebuilt from the lake days before "
            f"{week_start} (the online store already holds this week); Transaction "
            f"API (async) at http://127.0.0.1:{port}"
        )
        url = f"http://127.0.0.1:{port}"
        services = _Services(
            broker, processes[0], processes[1], url, key, store_url, work, bootstrap
        )
        _wait_ready(services)
        yield services
    finally:
        for process in reversed(processes):
            stop_process(process)
        broker.stop()
        _copy_broker_log(broker, work)


def start_logged(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a command with ``env`` added to this environment, its output into ``log``."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT
        )


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """SIGTERM (the scorer finishes its batch and commits), then SIGKILL if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_answering(
    url: str, process: subprocess.Popen[bytes], log: Path, name: str, timeout_s: float = 60.0
) -> None:
    """Wait until ``url`` answers 200; raise with the log's tail if ``process`` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the {name} exited ({process.returncode}):\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise TimeoutError(f"the {name} did not answer in {timeout_s:g} s; see {log}")


def _copy_broker_log(broker: Any, work: Path) -> None:
    with contextlib.suppress(Exception):  # the log is a convenience
        shutil.copy(broker.log_path, work / "broker.log")


def _wait_ready(services: _Services, timeout_s: float = 180.0) -> None:
    """Wait until the API is ready (model loaded, Kafka reachable)."""
    deadline = time.monotonic() + timeout_s
    with console.status("waiting for the API (model loaded, Kafka reachable)"):
        while time.monotonic() < deadline:
            services.check()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{services.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
    raise TimeoutError(f"the API was not ready in {timeout_s:.0f} s; see {services.logs}")


def _send(services: _Services, week: Week) -> float:
    """POST the week as async batches; the seconds it took (every batch acknowledged)."""
    rows = week.rows.to_pylist()
    headers = {"X-API-Key": services.api_key}
    began = time.perf_counter()
    with httpx.Client(base_url=services.url, headers=headers, timeout=60) as client:
        for start in range(0, len(rows), REQUEST_SIZE):
            batch = [
                {**row, "tx_datetime": row["tx_datetime"].isoformat()}
                for row in rows[start : start + REQUEST_SIZE]
            ]
            response = client.post(
                "/v1/transactions:batch", params={"mode": "async"}, json={"transactions": batch}
            )
            if response.status_code != 202:
                raise RuntimeError(f"the API answered {response.status_code}: {response.text}")
    seconds = time.perf_counter() - began
    bounded = (
        f" (the first {len(rows):,} of {week.available:,})" if len(rows) < week.available else ""
    )
    requests = -(-len(rows) // REQUEST_SIZE)
    console.print(
        f"sent {len(rows):,} transactions of the test week ({week.first} → "
        f"{week.last}){bounded} through the API in {requests} authenticated async "
        f"batches: {len(rows) / seconds:,.0f} tx/s acknowledged by Kafka"
    )
    return seconds


def _wait_scored(services: _Services, expected: int) -> tuple[int, float]:
    """Wait until the store holds ``expected`` scores; (scores, seconds waited)."""
    store = AlertStore(services.store_url)
    began = time.perf_counter()
    try:
        with console.status("waiting for the stream scorer"):
            while (scored := store.count()) < expected:
                services.check()
                if time.perf_counter() - began > SCORE_TIMEOUT_S:
                    console.print(
                        f"[red]only {scored:,} of {expected:,} scored in {SCORE_TIMEOUT_S:.0f} s"
                    )
                    break
                time.sleep(0.2)
    finally:
        store.close()
    return scored, time.perf_counter() - began


def _last_line(log: Path, prefix: str) -> str:
    lines = [
        line for line in log.read_text(errors="replace").splitlines() if line.startswith(prefix)
    ]
    return lines[-1] if lines else ""


def _print_decisions(store: Any) -> None:
    query = sa.select(SCORES.c.decision, sa.func.count()).group_by(SCORES.c.decision)
    with store.engine.connect() as connection:
        counts = Counter({str(d): int(n) for d, n in connection.execute(query)})
    console.print(
        f"alerts by decision: {REVIEW} {counts[REVIEW]:,}, {DECLINE} "
        f"{counts[DECLINE]:,} ({store.count('alerts'):,} alerts in the store; "
        f"{counts[APPROVE]:,} approved)"
    )


def _print_top_alerts(store: Any, limit: int = 5) -> None:
    table = Table(title="top alerts by expected loss (risk × amount), with their reason codes")
    for column in ("transaction", "customer", "amount", "risk", "decision", "top reasons"):
        table.add_column(column)
    for alert in store.top_alerts(limit):
        reasons = "; ".join(
            f"{r['feature']} = {r['value']:g} (+{r['contribution']:.2f})"
            for r in json.loads(alert["reason_codes"])
        )
        table.add_row(
            str(alert["transaction_id"]),
            str(alert["customer_id"]),
            f"{alert['tx_amount']:.2f}",
            f"{alert['risk_score']:.3f}",
            alert["decision"],
            reasons or "—",
        )
    console.print(table)


def _print_agreement(settings: Settings, table_uri: str, store: Any, rows: pa.Table) -> None:
    """The stream's scores against the champion's scores of the offline feature rows."""
    same, compared, largest = offline_agreement(settings, table_uri, store, rows)
    console.print(
        f"online = offline: stream scores equal the offline feature table's for "
        f"{100 * same / max(compared, 1):.2f} % of {compared:,} transactions "
        f"(largest difference {largest:.2e})"
    )


def offline_agreement(
    settings: Settings, table_uri: str, store: Any, rows: pa.Table
) -> tuple[int, int, float]:
    """How many stream scores equal (within 1e-6) the champion's score of the offline features.

    Returns:
        ``(equal, compared, largest absolute difference)``.
    """
    model = load_model(settings, settings.serving.model_uri)
    storage = FeatureTable.open(table_uri, settings.lake).storage
    dataset = ds.dataset(storage.root, filesystem=storage.fs, format="parquet", partitioning="hive")
    wanted = pc.field("transaction_id").isin(rows["transaction_id"])
    features = dataset.to_table(columns=["transaction_id", *model.feature_names], filter=wanted)
    matrix = np.column_stack(
        [features[n].to_numpy().astype(np.float32) for n in model.feature_names]
    )
    offline = dict(
        zip(features["transaction_id"].to_pylist(), model.probability(matrix).tolist(), strict=True)
    )
    query = sa.select(SCORES.c.transaction_id, SCORES.c.risk_score, SCORES.c.fallback)
    with store.engine.connect() as connection:
        online = {
            int(t): float(r)
            for t, r, fallback in connection.execute(query)
            if not fallback and int(t) in offline
        }
    differences = np.array([abs(online[t] - offline[t]) for t in online])
    largest = float(differences.max()) if len(differences) else float("nan")
    return int((differences <= 1e-6).sum()), len(differences), largest
