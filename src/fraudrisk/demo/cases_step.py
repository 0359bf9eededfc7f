"""``make demo`` step 8: the week's alerts become cases that a demo analyst works through the API.

Runs while step 7's Kafka broker is up, on step 7's alert store (which is also the application
database: SQLite, migrated here). Demo users — one per role — are created and their credentials
printed (password, TOTP seed; the scripted analyst computes its codes from the seed as an
authenticator app would). The case ingester puts every alert into a case, routed to the
queues; the case service (``fraudrisk cases serve``) starts on a free loopback port with labels
published to the ``labels`` topic; the admin adds the analyst to the queues; the analyst logs in
with password + TOTP, claims the highest expected-loss cases, reads each case view and resolves
it — the disposition taken from the lake's true label, as an investigation would find. Each
resolution becomes a label on the topic and in the lake's labels table, which the delayed-label
performance report then counts by source. Then the dashboard is served on the same database
(:mod:`fraudrisk.demo.dashboard_step`): its URL and the command to serve it again are printed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pandas as pd
import pyarrow.compute as pc
from rich.table import Table

from fraudrisk.cases.service import case_ingester
from fraudrisk.config import DatabaseSettings, Settings
from fraudrisk.console import console
from fraudrisk.data.labels import LabelsTable
from fraudrisk.demo.dashboard_step import dashboard_service, print_dashboard
from fraudrisk.demo.stream_step import start_logged, stop_process, wait_answering
from fraudrisk.identity.audit import SYSTEM
from fraudrisk.identity.roles import Role
from fraudrisk.identity.service import identity_for
from fraudrisk.identity.totp import code_at
from fraudrisk.io.database import open_database
from fraudrisk.io.kafka_broker import free_port
from fraudrisk.io.lake import Lake
from fraudrisk.monitoring.labels import kafka_labels
from fraudrisk.monitoring.performance import labelled_performance

#: The demo's people: username → role.
DEMO_USERS: dict[str, Role] = {
    "ana": Role.ANALYST,
    "sam": Role.SENIOR_ANALYST,
    "rita": Role.RISK_MANAGER,
    "raj": Role.RISK_MANAGER,
    "max": Role.MLOPS_ENGINEER,
    "ada": Role.ADMIN,
}
#: The scripted analyst and the admin who gives them their queues.
ANALYST, ADMIN = "ana", "ada"
#: Cases the scripted analyst resolves.
RESOLVE = 6
CHAMPION = "models:/fraud-risk@champion"


@dataclass(frozen=True)
class Credentials:
    """A demo user's login: password and TOTP seed (shown once, kept only hashed/sealed)."""

    username: str
    role: Role
    password: str
    totp_secret: str

    def code(self) -> str:
        """The current TOTP code, as the user's authenticator app shows it."""
        return code_at(self.totp_secret, dt.datetime.now(dt.UTC).replace(tzinfo=None))


#: A next step run while the case service is up: (settings, its URL, the people) → success.
NextStep = Callable[[Settings, str, dict[str, "Credentials"]], bool]


def run_cases_step(
    settings: Settings,
    store_url: str,
    bootstrap: str,
    work: Path,
    week: tuple[dt.date, dt.date],
    then: NextStep | None = None,
) -> bool:
    """Step 8: cases from the week's alerts, worked by the demo analyst; True when all held.

    Args:
        settings: The demo's settings.
        store_url: Step 7's alert store, the application database too.
        bootstrap: The running Kafka broker (labels go to its ``labels`` topic).
        work: Step 7's folder (the case service's log goes there).
        week: First and last day of the replayed week.
        then: A next step run on success while the case service still runs (the policy step),
            given the case settings, the service's URL and the demo people.
    """
    console.rule("[bold]8. cases: the week's alerts in queues, worked by a demo analyst")
    settings = _case_settings(settings, store_url, bootstrap)
    engine = open_database(store_url)
    try:
        people = _create_users(settings, engine)
        done = case_ingester(settings, engine).ingest_all()
    finally:
        engine.dispose()
    console.print(
        f"case ingester: {done.alerts:,} alerts → {done.opened:,} cases "
        f"({done.joined:,} alerts joined their customer's open case)"
    )
    _print_credentials(people)
    frauds = week_frauds(Lake.open(settings.lake_uri, settings.lake), week)
    with case_service(settings, work) as url:
        resolved = _work_cases(url, people, frauds)
        labelled = _check_labels(settings, resolved, week)
        with dashboard_service(settings, work) as dashboard_url:
            print_dashboard(settings, dashboard_url, work)
            return bool(labelled and (then is None or then(settings, url, people)))


def _case_settings(settings: Settings, store_url: str, bootstrap: str) -> Settings:
    return settings.model_copy(
        update={
            "db": DatabaseSettings(url=store_url),
            "kafka": settings.kafka.model_copy(update={"bootstrap_servers": bootstrap}),
            "cases": settings.cases.model_copy(update={"publish_labels_topic": True}),
        }
    )


def _create_users(settings: Settings, engine: Any) -> dict[str, Credentials]:
    accounts = identity_for(settings, engine).accounts
    people = {}
    for username, role in DEMO_USERS.items():
        password = secrets.token_urlsafe(12)
        enrolment = accounts.create(SYSTEM, username, role, password)
        secret = parse_qs(urlparse(enrolment.provisioning_uri).query)["secret"][0]
        people[username] = Credentials(username, role, password, secret)
    return people


def _print_credentials(people: dict[str, Credentials]) -> None:
    console.print(
        "demo users (shown once; add the TOTP seed to an authenticator app, or run "
        "`fraudrisk users reset-mfa -u NAME` for a QR-ready otpauth:// URI):"
    )
    for person in people.values():
        console.print(
            f"  {person.username:<5} {person.role.value:<15} password {person.password}  "
            f"TOTP seed {person.totp_secret}",
            highlight=False,
            soft_wrap=True,
        )


@contextlib.contextmanager
def case_service(settings: Settings, work: Path) -> Iterator[str]:
    """``fraudrisk cases serve`` on a free loopback port; stopped on the way out."""
    port = free_port()
    env = {
        "FRAUDRISK_HOME": str(settings.home),
        "FRAUDRISK_DB__URL": settings.db_url,
        "FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "FRAUDRISK_CASES__PUBLISH_LABELS_TOPIC": "true",
    }
    argv = [sys.executable, "-m", "fraudrisk", "cases", "serve", "--port", str(port)]
    process = start_logged(argv, env, work / "cases.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(f"{url}/healthz", process, work / "cases.log", "case service")
        console.print(f"case service at {url} (OpenAPI at {url}/docs); log {work}/cases.log")
        yield url
    finally:
        stop_process(process)


def login(client: httpx.Client, person: Credentials) -> None:
    """Password + TOTP; the session token becomes the client's bearer."""
    body = {"username": person.username, "password": person.password, "code": person.code()}
    response = client.post("/v1/auth/login", json=body)
    ok_json(response)
    client.headers["Authorization"] = f"Bearer {response.json()['token']}"


def ok_json(response: httpx.Response) -> Any:
    """The response's JSON (None when empty); raises with the status and body on an error."""
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} → "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json() if response.content else None


def _work_cases(url: str, people: dict[str, Credentials], frauds: set[int]) -> list[dict[str, Any]]:
    """The admin gives the analyst every queue; the analyst claims and resolves cases."""
    with httpx.Client(base_url=url, timeout=30) as admin:
        login(admin, people[ADMIN])
        queues = ok_json(admin.get("/v1/queues"))
        for queue in queues:
            ok_json(admin.put(f"/v1/queues/{queue['name']}/members/{ANALYST}"))
    _print_queues(queues)
    with httpx.Client(base_url=url, timeout=30) as analyst:
        login(analyst, people[ANALYST])
        console.print(
            f"{ANALYST} ({people[ANALYST].role.value}) logged in with password + TOTP; "
            f"claiming the {RESOLVE} cases of highest expected loss"
        )
        resolved = [_resolve_next(analyst, frauds) for _ in range(RESOLVE)]
    _print_resolved([case for case in resolved if case])
    return [case for case in resolved if case]


def _print_queues(queues: list[dict[str, Any]]) -> None:
    table = Table(title="queues (sorted by priority = expected loss = calibrated risk × amount)")
    for column in ("queue", "open cases", "unassigned", "SLA (min)", "description"):
        table.add_column(column)
    for queue in queues:
        table.add_row(
            queue["name"],
            f"{queue['open_cases']:,}",
            f"{queue['unassigned']:,}",
            str(queue["sla_minutes"]),
            queue["description"],
        )
    console.print(table)


def _resolve_next(client: httpx.Client, frauds: set[int]) -> dict[str, Any] | None:
    """Claim the case of highest expected loss waiting in my queues, read it, resolve it."""
    waiting = ok_json(client.get("/v1/cases", params={"status": "new", "limit": 1}))
    if not waiting:
        return None
    case = ok_json(client.post(f"/v1/queues/{waiting[0]['queue']}/claim-next"))
    view = ok_json(client.get(f"/v1/cases/{case['id']}"))
    started = ok_json(
        client.post(
            f"/v1/cases/{case['id']}/actions",
            json={"action": "start", "version": view["case"]["version"]},
        )
    )
    ids = [alert["transaction_id"] for alert in view["alerts"]]
    disposition = "confirmed-fraud" if frauds.intersection(ids) else "legitimate"
    ok_json(
        client.post(
            f"/v1/cases/{case['id']}/comments",
            json={"text": f"checked {len(ids)} transaction(s) with the cardholder: {disposition}"},
        )
    )
    done = ok_json(
        client.post(
            f"/v1/cases/{case['id']}/actions",
            json={
                "action": "resolve",
                "version": started["version"],
                "disposition": disposition,
                "note": "demo analyst",
            },
        )
    )
    return {**done, "transactions": ids, "reasons": view["reasons"]}


def week_frauds(lake: Lake, week: tuple[dt.date, dt.date]) -> set[int]:
    """The fraudulent transactions of the week in the lake (what an investigation finds)."""
    rows = lake.read(week[0], week[1], ["transaction_id", "tx_fraud"], include_labels=True)
    frauds = rows.filter(pc.equal(rows["tx_fraud"], 1))["transaction_id"]
    return {int(tx) for tx in frauds.to_pylist()}


def _print_resolved(cases: list[dict[str, Any]]) -> None:
    table = Table(title="cases the demo analyst resolved through the API")
    for column in (
        "case",
        "queue",
        "customer",
        "alerts",
        "expected loss",
        "disposition",
        "top reason",
    ):
        table.add_column(column)
    for case in cases:
        top = case["reasons"][0] if case["reasons"] else None
        reason = "—"
        if top:
            baseline = top["customer_baseline"]
            usual = f" (usually {baseline:g})" if baseline is not None else ""
            reason = f"{top['feature']} = {top['value']:g}{usual}"
        table.add_row(
            str(case["id"]),
            case["queue"],
            str(case["customer_id"]),
            str(case["alert_count"]),
            f"{case['priority']:,.2f}",
            case["disposition"],
            reason,
        )
    console.print(table)


def _check_labels(
    settings: Settings, resolved: list[dict[str, Any]], week: tuple[dt.date, dt.date]
) -> bool:
    """The resolutions' labels on the topic and in the labels table, counted by the report."""
    expected = {tx for case in resolved for tx in case["transactions"]}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    lake = Lake.open(settings.lake_uri, settings.lake)
    table = LabelsTable.beside(lake.storage).read(now + dt.timedelta(seconds=1))
    in_table = set(table.loc[table["source"] == "analyst", "transaction_id"].astype(int))
    topic = _wait_topic_labels(settings, expected)
    console.print(
        f"labels: {len(expected)} transactions resolved → {len(expected & in_table)} in the "
        f"lake's labels table ({LabelsTable.beside(lake.storage).storage.uri}), "
        f"{len(expected & topic)} on the {settings.kafka.labels_topic} topic"
    )
    result = labelled_performance(settings, CHAMPION, week[0], week[1], as_of=now.date())
    sources = ", ".join(f"{n:,} {source}" for source, n in result.labels.items()) or "none"
    ap = "—" if result.average_precision is None else f"{result.average_precision:.3f}"
    console.print(
        f"delayed-label performance of {CHAMPION} over {result.start} → {result.end} as of "
        f"{now.date()}: AP {ap} on labels from {sources}"
    )
    return expected <= in_table and expected <= topic and result.labels.get("analyst", 0) > 0


def _wait_topic_labels(settings: Settings, expected: set[int], timeout_s: float = 30) -> set[int]:
    """The analyst labels of ``expected`` on the topic (sent after each resolution commits)."""
    deadline = time.monotonic() + timeout_s
    while True:
        today = dt.datetime.now(dt.UTC).date()
        frame: pd.DataFrame = kafka_labels(settings, today).labels
        found = set(frame.loc[frame["source"] == "analyst", "transaction_id"].astype(int))
        if expected <= found or time.monotonic() > deadline:
            return found & expected
        time.sleep(1)
