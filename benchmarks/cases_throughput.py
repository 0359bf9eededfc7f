"""Case service: alert → case ingestion rate, and the queue view's latency with 100,000 cases.

Both on a throw-away PostgreSQL cluster on loopback (Debian's binaries), each beside a
baseline measured in the same run:

* **ingestion** — ``CaseIngester.ingest_all`` (bulk: one transaction per batch of 5,000, cases
  inserted and extended with one statement each) against a naive ingester that handles one
  alert at a time in its own transaction (look up the customer's open case, insert or update
  it, insert the case alert, mark the alert). Target ≥ 5,000 alerts/s.
* **queue view** — the first page (50 open cases by priority) of one queue, as the case API
  serves it (``GET /v1/cases?queue=…&status=…``, in process through FastAPI with a bearer
  token), with 100,000 open cases in the database. Baseline: the same request with the
  ``(queue_id, priority DESC, id)`` index dropped. Target p99 ≤ 50 ms.

Usage:
    python benchmarks/cases_throughput.py
    python benchmarks/cases_throughput.py --alerts 50000 --naive 2000 --requests 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from fraudrisk.alerts.records import ScoreColumns
from fraudrisk.alerts.store import ALERTS, AlertStore
from fraudrisk.cases.ingest import CASED, CaseIngester
from fraudrisk.cases.lifecycle import OPEN_STATUSES
from fraudrisk.cases.routing import load_rules
from fraudrisk.cases.tables import CASE_ALERTS, CASES
from fraudrisk.io import database
from fraudrisk.io.local_postgres import local_postgres

INGEST_TARGET, VIEW_TARGET_MS = 5_000.0, 50.0
REASONS = json.dumps([{"feature": "terminal_risk_7d", "value": 0.4, "contribution": 0.8}])


def alert_columns(count: int, first_id: int, customers: int, seed: int) -> ScoreColumns:
    """``count`` alerted transactions (review/decline) of random customers, a minute apart."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 1, 1)
    return ScoreColumns(
        transaction_id=list(range(first_id, first_id + count)),
        customer_id=[rng.randrange(customers) for _ in range(count)],
        terminal_id=[rng.randrange(10_000) for _ in range(count)],
        tx_datetime=[start + dt.timedelta(seconds=30 * i) for i in range(count)],
        tx_amount=[round(rng.lognormvariate(3.5, 1.0), 2) for _ in range(count)],
        risk_score=[rng.uniform(0.3, 1.0) for _ in range(count)],
        decision=[rng.choice(("review", "decline")) for _ in range(count)],
        reason_codes=[REASONS] * count,
        model_version=["3"] * count,
        variant=["default"] * count,
        fallback=[False] * count,
    )


def naive_ingest(engine: sa.Engine, queue_id: int, window: dt.timedelta) -> int:
    """Baseline: one alert per transaction, one row per statement."""
    done = 0
    while True:
        with engine.begin() as connection:
            alert = connection.execute(
                sa.select(ALERTS).where(ALERTS.c.status == "open").limit(1)
            ).first()
            if alert is None:
                return done
            case = connection.execute(
                sa.select(CASES)
                .where(CASES.c.customer_id == alert.customer_id)
                .where(CASES.c.status.in_(OPEN_STATUSES))
                .order_by(CASES.c.last_alert_at.desc())
                .limit(1)
            ).first()
            loss = alert.risk_score * alert.tx_amount
            if case is None or alert.tx_datetime - case.last_alert_at > window:
                now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                case_id = connection.execute(
                    CASES.insert()
                    .values(
                        customer_id=alert.customer_id,
                        queue_id=queue_id,
                        status="new",
                        priority=loss,
                        amount_total=alert.tx_amount,
                        max_risk=alert.risk_score,
                        alert_count=1,
                        decision=alert.decision,
                        model_version=alert.model_version,
                        variant="default",
                        routing_rule="naive",
                        opened_at=now,
                        last_alert_at=alert.tx_datetime,
                        due_at=now,
                        updated_at=now,
                        version=1,
                    )
                    .returning(CASES.c.id)
                ).scalar_one()
            else:
                case_id = case.id
                connection.execute(
                    CASES.update()
                    .where(CASES.c.id == case.id)
                    .values(priority=CASES.c.priority + loss, alert_count=CASES.c.alert_count + 1)
                )
            connection.execute(
                CASE_ALERTS.insert().values(
                    transaction_id=alert.transaction_id,
                    case_id=case_id,
                    customer_id=alert.customer_id,
                    terminal_id=0,
                    tx_datetime=alert.tx_datetime,
                    tx_amount=alert.tx_amount,
                    risk_score=alert.risk_score,
                    decision=alert.decision,
                    reason_codes=alert.reason_codes,
                    model_version=alert.model_version,
                    variant="default",
                    alerted_at=alert.created_at,
                )
            )
            connection.execute(
                ALERTS.update()
                .where(ALERTS.c.transaction_id == alert.transaction_id)
                .values(status=CASED)
            )
        done += 1


def measure_ingestion(url: str, alerts: int, naive: int, console: Console) -> dict[str, float]:
    """Alerts per second: ours over ``alerts``, the naive one over ``naive`` (fresh alerts)."""
    store = AlertStore(url)
    ingester = CaseIngester(store.engine, load_rules(), dt.timedelta(hours=72))
    store.write_columns(alert_columns(alerts, 1, customers=alerts // 2, seed=1))
    started = time.perf_counter()
    ours = ingester.ingest_all()
    ours_s = time.perf_counter() - started
    console.print(f"bulk: {ours.alerts:,} alerts → {ours.opened:,} cases in {ours_s:.1f} s")
    store.write_columns(alert_columns(naive, 10_000_000, customers=naive // 2, seed=2))
    started = time.perf_counter()
    done = naive_ingest(store.engine, ingester.queues["general"], dt.timedelta(hours=72))
    naive_s = time.perf_counter() - started
    console.print(f"naive: {done:,} alerts in {naive_s:.1f} s")
    return {"ours": ours.alerts / ours_s, "naive": done / naive_s}


def fill_cases(url: str, target: int, console: Console) -> None:
    """Ingest alerts of distinct customers until ``target`` open cases exist."""
    store = AlertStore(url)
    ingester = CaseIngester(store.engine, load_rules(), dt.timedelta(seconds=1))
    with store.engine.connect() as connection:
        have = connection.execute(sa.select(sa.func.count()).select_from(CASES)).scalar_one()
    missing = max(target - have, 0)
    store.write_columns(alert_columns(missing, 20_000_000, customers=10**9, seed=3))
    ingester.ingest_all()
    with store.engine.begin() as connection:
        connection.execute(sa.text("ANALYZE"))
        total = connection.execute(sa.select(sa.func.count()).select_from(CASES)).scalar_one()
    console.print(f"{total:,} cases in PostgreSQL")


def queue_view_latencies(url: str, home: Path, requests: int) -> list[float]:
    """Milliseconds per first-page request of the largest queue, through the API."""
    from fastapi.testclient import TestClient

    from fraudrisk.cases.api import create_app
    from fraudrisk.cases.queues import set_membership
    from fraudrisk.cases.service import case_services
    from fraudrisk.config import Settings
    from fraudrisk.identity.audit import Actor

    settings = Settings(home=home, db={"url": url})
    services = case_services(settings)
    accounts = services.identity.accounts
    if not any(u.username == "bench-analyst" for u in accounts.list()):
        accounts.create(
            Actor("bench"), "bench-analyst", "analyst", "benchmark-pass", mfa_required=False
        )
        accounts.create(
            Actor("bench"), "bench-admin", "admin", "benchmark-pass", mfa_required=False
        )
        admin_token = services.identity.sessions.login("bench-admin", "benchmark-pass").token
        admin = services.identity.sessions.authenticate(admin_token)
        set_membership(services.engine, admin, "general", "bench-analyst", True)
    token = services.identity.sessions.login("bench-analyst", "benchmark-pass").token
    client = TestClient(create_app(services))
    params: dict[str, Any] = {"queue": "general", "status": list(OPEN_STATUSES), "limit": 50}
    headers = {"Authorization": f"Bearer {token}"}
    latencies = []
    for _ in range(requests + 10):
        started = time.perf_counter()
        response = client.get("/v1/cases", params=params, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and len(response.json()) == 50, response.text
    return latencies[10:]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of the values."""
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main() -> None:
    """Run both measurements and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=50_000, help="Alerts for the bulk ingester.")
    parser.add_argument("--naive", type=int, default=3_000, help="Alerts for the naive one.")
    parser.add_argument("--cases", type=int, default=100_000, help="Open cases for the view.")
    parser.add_argument("--requests", type=int, default=300, help="Queue-view requests.")
    args = parser.parse_args()
    console = Console()
    with local_postgres(("cases",)) as server, tempfile.TemporaryDirectory() as home:
        url = f"postgresql+psycopg://{server.split('://', 1)[1]}/cases"
        AlertStore(url).close()
        database.upgrade(database.create_engine(url))
        rates = measure_ingestion(url, args.alerts, args.naive, console)
        fill_cases(url, args.cases, console)
        indexed = queue_view_latencies(url, Path(home), args.requests)
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP INDEX ix_cases_queue_priority"))
        unindexed = queue_view_latencies(url, Path(home), args.requests)
    print_tables(console, rates, indexed, unindexed, args)


def print_tables(
    console: Console,
    rates: dict[str, float],
    indexed: list[float],
    unindexed: list[float],
    args: argparse.Namespace,
) -> None:
    """The two tables, with the machine and date."""
    console.print(
        f"{dt.date.today()} · {platform.processor() or platform.machine()} · "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    ingest = Table(title=f"alert → case ingestion, PostgreSQL (target ≥ {INGEST_TARGET:,.0f}/s)")
    for column in ("ingester", "alerts/s", "× naive"):
        ingest.add_column(column, justify="right")
    ingest.add_row(
        "bulk (CaseIngester)", f"{rates['ours']:,.0f}", f"{rates['ours'] / rates['naive']:.1f}"
    )
    ingest.add_row("naive, one row at a time", f"{rates['naive']:,.0f}", "1.0")
    console.print(ingest)
    view = Table(
        title=f"queue view, first 50 of {args.cases:,} cases (target p99 ≤ {VIEW_TARGET_MS:.0f} ms)"
    )
    for column in ("", "p50 ms", "p99 ms", "requests"):
        view.add_column(column, justify="right")
    for name, values in (("indexed (ours)", indexed), ("index dropped", unindexed)):
        view.add_row(
            name,
            f"{statistics.median(values):.1f}",
            f"{percentile(values, 0.99):.1f}",
            str(len(values)),
        )
    console.print(view)


if __name__ == "__main__":
    main()
