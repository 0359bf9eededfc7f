"""Sync mode's alerts become cases: the served API writes to a real PostgreSQL, through outages.

* ``fraudrisk api serve`` (a child process) against the session's PostgreSQL: transactions
  POSTed in sync mode (some with a card number) land in ``scores`` and ``alerts`` — the last
  ones only by the flush at SIGTERM — with no card data anywhere; then the case ingester
  (after the Alembic migrations) puts every alert in exactly one case, and a second ingest
  changes nothing.
* The API served by uvicorn on loopback against a cluster of its own, which the test stops
  (``pg_ctl stop -m fast``) and starts again mid-run: the requests of the outage are answered
  in time, their records spooled under HOME and replayed when the server is back — 0 lost,
  0 duplicated, every alert in one case. The negative control runs the same with a writer
  whose spool is disabled: the same reconciliation finds the outage's records missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa
import uvicorn
from prometheus_client import CollectorRegistry
from sqlalchemy.pool import NullPool
from tests.unit.api.helpers import TEST_PAN, TOKEN_KEY, WRITER_KEY, api_settings, rules_only
from tests.unit.api.helpers import transaction as body_of

from fraudrisk.alerts.records import ScoreColumns
from fraudrisk.api.app import create_app
from fraudrisk.api.auth import hash_api_key
from fraudrisk.api.store_sink import ScoreStoreWriter
from fraudrisk.cases.service import case_ingester
from fraudrisk.cases.tables import CASE_ALERTS
from fraudrisk.config import DatabaseSettings, Settings
from fraudrisk.io import database
from fraudrisk.io.kafka_broker import free_port
from fraudrisk.io.local_postgres import bindir, local_postgres

pytestmark = [pytest.mark.integration, pytest.mark.timeout(360)]
AUTH = {"X-API-Key": WRITER_KEY}
AMOUNTS = (30.0, 260.0, 1800.0, 75.0)  # the fallback rules: approve, review, decline, approve


def psycopg(url: str, database_name: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://") + f"/{database_name}"


def bodies(first: int, count: int) -> list[dict[str, Any]]:
    """Transactions ``first…first+count-1``; every fifth carries a card number."""
    return [
        body_of(
            i,
            tx_amount=AMOUNTS[i % 4],
            customer_id=i % 23,
            terminal_id=i % 31,
            tx_datetime=f"2024-05-0{1 + i % 5}T{i % 24:02d}:{i % 60:02d}:00",
            **({"card_number": TEST_PAN} if i % 5 == 0 else {}),
        )
        for i in range(first, first + count)
    ]


# ----------------------------------------------------------------------------- the databases
@pytest.fixture()
def session_db(postgres_server: str) -> Iterator[str]:
    """An empty database of the session's server for one test (dropped after it)."""
    with database_on(postgres_server, "api_sync_store") as url:
        yield url


@contextlib.contextmanager
def database_on(server: str, name: str) -> Iterator[str]:
    """A new empty database ``name`` on ``server`` while the block runs."""
    admin = sa.create_engine(
        psycopg(server, "postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield psycopg(server, name)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster this module may stop and start: its URL and data folder."""

    url: str
    data: str

    def _pg_ctl(self, *args: str) -> None:
        as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        command = [*as_owner, f"{bindir()}/pg_ctl", "-D", self.data, *args]
        subprocess.run(command, check=True, capture_output=True, timeout=90)

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        """Start it again with the options ``local_postgres`` gave it (same port)."""
        port = self.url.rsplit(":", 1)[1]
        options = f"-p {port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-l", f"{self.data}/server.log", "-w", "-t", "60", "start")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A cluster of this module's own: stopping it disturbs no other test's server."""
    with local_postgres() as url:
        engine = sa.create_engine(psycopg(url, "postgres"), poolclass=NullPool)
        with engine.connect() as connection:
            data = str(connection.exec_driver_sql("SHOW data_directory").scalar_one())
        engine.dispose()
        made = Cluster(url, data)
        try:
            yield made
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):  # up for local_postgres
                made.start()


# ----------------------------------------------------------------------------- reconciliation
@dataclass(frozen=True)
class Reconciled:
    """Sent against stored: what is missing, what is there twice, and the cases."""

    lost: set[int]
    duplicated: int
    alerts_not_alerted: set[int]
    alerts_in_no_case: set[int]
    alerts_in_two_cases: int


def reconcile(url: str, settings: Settings, answers: dict[int, dict[str, Any]]) -> Reconciled:
    """Compare the API's answers with the store, then ingest the alerts into cases."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            stored = [
                row[0] for row in connection.exec_driver_sql("SELECT transaction_id FROM scores")
            ]
            alerts = {
                row[0] for row in connection.exec_driver_sql("SELECT transaction_id FROM alerts")
            }
        alerted = {tx for tx, a in answers.items() if a["decision"] != "approve"}
        database.upgrade(engine)
        ingester = case_ingester(settings, engine)
        ingester.ingest_all()
        assert ingester.ingest_all().alerts == 0  # a second ingest finds nothing to do
        with engine.connect() as connection:
            cased = [row[0] for row in connection.execute(sa.select(CASE_ALERTS.c.transaction_id))]
        return Reconciled(
            lost=set(answers) - set(stored),
            duplicated=len(stored) - len(set(stored)),
            alerts_not_alerted=alerts ^ (alerted & set(stored)),
            alerts_in_no_case=alerts - set(cased),
            alerts_in_two_cases=len(cased) - len(set(cased)),
        )
    finally:
        engine.dispose()


def no_card_data(url: str, home: Path) -> None:
    """Neither the card number nor the token key is in the database or under HOME."""
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        for table in ("scores", "alerts", "case_alerts", "cases"):
            dump = connection.exec_driver_sql(f"SELECT row_to_json(t)::text FROM {table} t").all()
            text = "".join(row[0] for row in dump)
            assert TEST_PAN not in text and "card_token" not in text, table
    engine.dispose()
    for path in home.rglob("*"):
        if path.is_file():
            assert TEST_PAN.encode() not in path.read_bytes(), path


def post_all(client: httpx.Client, sent: list[dict[str, Any]], per_request: int) -> dict[int, Any]:
    """POST in sync mode (batches of ``per_request``, or one by one); the answers by id."""
    answers: dict[int, Any] = {}
    for start in range(0, len(sent), per_request):
        chunk = sent[start : start + per_request]
        if per_request == 1:
            response = client.post("/v1/transactions?mode=sync", json=chunk[0], headers=AUTH)
            results = [response.json()]
        else:
            payload = {"transactions": chunk}
            response = client.post("/v1/transactions:batch?mode=sync", json=payload, headers=AUTH)
            results = response.json().get("results", [])
        assert response.status_code == 200, response.text
        answers |= {r["transaction_id"]: r for r in results}
    return answers


def stored_count(url: str) -> int:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT count(*) FROM scores").scalar_one())
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # server down, or no table yet
        return -1
    finally:
        engine.dispose()


def eventually(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.1)


# ----------------------------------------------------------------------------- fraudrisk api serve
@pytest.mark.slow
def test_served_sync_alerts_reach_postgres_and_become_cases(
    session_db: str, tmp_path: Path
) -> None:
    port, key = free_port(), WRITER_KEY
    home = tmp_path / "home"
    env = os.environ | {
        "FRAUDRISK_HOME": str(home),
        "FRAUDRISK_DB__URL": session_db,
        "FRAUDRISK_API__KAFKA_ENABLED": "false",
        "FRAUDRISK_API__PAN_TOKEN_KEY": TOKEN_KEY,
        "FRAUDRISK_API__MODEL_RETRY_S": "600",
        "FRAUDRISK_API__RATE_PER_S": "10000",
        "FRAUDRISK_API__BURST": "10000",
        "FRAUDRISK_API__STORE_FLUSH_INTERVAL_S": "2",
        "FRAUDRISK_API__KEYS": json.dumps([{"client": "t", "key_hash": hash_api_key(key)}]),
    }
    log = (tmp_path / "server.log").open("w+")
    argv = [sys.executable, "-m", "fraudrisk", "api", "serve", "--port", str(port)]
    server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server)
        with httpx.Client(base_url=base, timeout=10) as client:
            answers = post_all(client, bodies(1, 400), 20)
            eventually(lambda: stored_count(session_db) == 400, 30, "400 stored while serving")
            answers |= post_all(client, bodies(401, 100), 1)
            metrics = client.get("/metrics").text
    finally:
        server.send_signal(signal.SIGTERM)  # the lifespan flushes the writer
        server.wait(timeout=60)
    log.seek(0)
    text = log.read()
    assert "Application shutdown complete" in text  # uvicorn re-raises SIGTERM after it
    assert TEST_PAN not in text
    assert stored_count(session_db) == 500  # the last 100 only by the flush at shutdown
    assert re.search(r"fraudrisk_api_store_queued_total 500\.0", metrics)
    settings = Settings(home=home, db=DatabaseSettings(url=session_db))
    outcome = reconcile(session_db, settings, answers)
    assert outcome == Reconciled(set(), 0, set(), set(), 0)
    assert sum(a["decision"] != "approve" for a in answers.values()) == 250  # half alerted
    no_card_data(session_db, home)


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise TimeoutError("the API did not become ready")


# ----------------------------------------------------------------------------- outages
class SpoolDisabledWriter(ScoreStoreWriter):
    """The negative control: a writer without its spool (records of an outage are dropped)."""

    dropped = 0

    def _spool(self, columns: ScoreColumns, reason: str, *, durable: bool = False) -> None:
        self.dropped += len(columns)


@contextlib.contextmanager
def serving(settings: Settings, registry: CollectorRegistry, control: bool) -> Iterator[Any]:
    """The API (lifespan on) served by uvicorn on a free loopback port, in a thread."""
    app = create_app(settings, scorer=rules_only(settings), relay=False, registry=registry)
    services = app.state.services
    if control:
        services.store = SpoolDisabledWriter.from_settings(settings, services.metrics.store)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-under-test", daemon=True)
    thread.start()
    eventually(lambda: server.started or not thread.is_alive(), 30, "uvicorn started")
    assert server.started, "the API did not start"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client, services.store
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def outage_run(cluster: Cluster, home: Path, db: str, control: bool) -> Reconciled:
    """Before, during and after the server is down: 100, 200 and 50 transactions."""
    registry = CollectorRegistry()
    api = api_settings(store_flush_interval_s=0.05, store_retry_s=0.3, store_batch_size=64)
    settings = Settings(home=home, db=DatabaseSettings(url=db), api=api)
    with serving(settings, registry, control) as (client, writer):
        answers = post_all(client, bodies(1, 100), 20)
        eventually(lambda: stored_count(db) == 100, 30, "stored before the outage")
        cluster.stop()
        try:
            began = time.monotonic()
            answers |= post_all(client, bodies(101, 150), 10)
            answers |= post_all(client, bodies(251, 50), 1)
            assert time.monotonic() - began < 20  # 65 requests, none waiting for the database
            eventually(
                lambda: _spooled(registry) + getattr(writer, "dropped", 0) == 200,
                30,
                "the outage's records spooled (or dropped)",
            )
            if not control:
                assert client.get("/readyz").json()["alert_store"] == "spooling"
                assert writer.spool.pending == 200
        finally:
            cluster.start()
        answers |= post_all(client, bodies(301, 50), 25)
        # generous: after a restart under a loaded suite the pool reconnects slowly (seen: > 60 s)
        eventually(lambda: stored_count(db) >= (150 if control else 350), 150, "stored after")
    spool = home / "api-spool"
    assert not list(spool.glob("*.jsonl*"))  # replayed and removed (or never written)
    settings = Settings(home=home, db=DatabaseSettings(url=db))
    outcome = reconcile(db, settings, answers)
    no_card_data(db, home)
    return outcome


def _spooled(registry: CollectorRegistry) -> float:
    labels = {"reason": "store_down"}
    return registry.get_sample_value("fraudrisk_api_store_spooled_total", labels) or 0.0


def test_an_outage_loses_nothing_and_duplicates_nothing(cluster: Cluster, tmp_path: Path) -> None:
    with database_on(cluster.url, "outage") as db:
        outcome = outage_run(cluster, tmp_path, db, control=False)
    assert outcome == Reconciled(set(), 0, set(), set(), 0)


def test_negative_control_a_writer_without_spool_loses_the_outage(
    cluster: Cluster, tmp_path: Path
) -> None:
    with database_on(cluster.url, "control") as db:
        outcome = outage_run(cluster, tmp_path, db, control=True)
    assert outcome.lost == set(range(101, 301))  # the check fails: 200 records missing
    assert outcome.duplicated == 0 and outcome.alerts_in_no_case == set()
