"""Alerts become cases: each alert joins exactly one case, whatever is replayed or restarted.

The stream scorer, batch scoring and the sync API write alerts to the alert store (keyed by
transaction id, idempotent). :func:`ingest_batch` takes the alerts not yet in a case, in one
database transaction: an alert of a customer with an open case whose last alert is within the
join window joins it; the others open a case, routed to a queue. The alerts are then marked
``cased`` and ``case_alerts`` is keyed by transaction id, so a crash at any point leaves either
everything or nothing of a batch, and a replay adds nothing. On PostgreSQL, concurrent
ingesters skip each other's rows (``FOR UPDATE SKIP LOCKED``).

Priority is the case's expected loss: the sum over its alerts of calibrated risk × amount, each
times the decision policy's priority factor (1 without a raise_priority rule). A case opened by
an alert that a policy ``route`` rule sent to a known queue goes to that queue (routing rule
``policy-route``); otherwise the routing file decides.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fraudrisk.alerts.store import ALERTS, SCORES
from fraudrisk.alerts.store import METADATA as ALERT_STORE_TABLES
from fraudrisk.cases.assignment import least_loaded, member_loads
from fraudrisk.cases.lifecycle import OPEN_STATUSES, Status
from fraudrisk.cases.routing import CaseFacts, RoutingRules, route
from fraudrisk.cases.tables import CASE_ALERTS, CASE_EVENTS, CASES, QUEUES
from fraudrisk.io.database import allocate_ids, bulk_insert, bulk_update, utcnow
from fraudrisk.vocab import DECLINE

CASED = "cased"


@dataclass
class Ingested:
    """What one ingest did."""

    alerts: int = 0
    opened: int = 0
    joined: int = 0
    case_ids: set[int] = field(default_factory=set)


def sync_queues(engine: Engine, rules: RoutingRules) -> dict[str, int]:
    """Create the routing file's queues that are missing, update SLAs; returns id by name."""
    now = utcnow()
    with engine.begin() as connection:
        existing = {r.name: r for r in connection.execute(sa.select(QUEUES))}
        for spec in rules.queues:
            values = {"sla_minutes": spec.sla_minutes, "description": spec.description}
            if spec.name in existing:
                connection.execute(
                    QUEUES.update().where(QUEUES.c.name == spec.name).values(**values)
                )
            else:
                connection.execute(QUEUES.insert().values(name=spec.name, created_at=now, **values))
        rows = connection.execute(sa.select(QUEUES.c.name, QUEUES.c.id, QUEUES.c.sla_minutes))
        return {name: queue_id for name, queue_id, _ in rows}


def _pending(connection: Connection, limit: int) -> list[Any]:
    query = (
        sa.select(
            ALERTS,
            SCORES.c.terminal_id,
            SCORES.c.variant,
            SCORES.c.route,
            SCORES.c.priority_factor,
            SCORES.c.policy_version,
        )
        .join(SCORES, SCORES.c.transaction_id == ALERTS.c.transaction_id)
        .where(ALERTS.c.status == "open")
        .order_by(ALERTS.c.tx_datetime, ALERTS.c.transaction_id)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(of=ALERTS, skip_locked=True)
    return list(connection.execute(query))


#: Advisory lock class of the customers' locks (two-key form: apart from the audit log's lock).
_PG_CUSTOMER_LOCKS = 7_310_002


def _lock_customers(connection: Connection, customers: list[int]) -> None:
    """On PostgreSQL, hold each customer's lock until commit: one batch at a time per customer.

    Concurrent ingesters hold disjoint alerts, but two may hold alerts of one customer: without
    the lock both read the customer's open case (or that there is none), and the later write
    overwrites the other's totals (a lost update) or both open a case. Taken in key order, in
    one statement, so two batches never wait for each other in a cycle.
    """
    if connection.dialect.name != "postgresql" or not customers:
        return
    connection.exec_driver_sql(
        "SELECT pg_advisory_xact_lock(%s::int, k) FROM (SELECT DISTINCT hashint8(c) AS k"
        " FROM unnest(%s::bigint[]) AS u(c) ORDER BY k OFFSET 0) AS keys",
        (_PG_CUSTOMER_LOCKS, customers),
    )


def _open_cases(connection: Connection, customers: list[int]) -> dict[int, Any]:
    query = (
        sa.select(CASES)
        .where(CASES.c.customer_id.in_(customers), CASES.c.status.in_(OPEN_STATUSES))
        .order_by(CASES.c.last_alert_at)
    )
    return {row.customer_id: row for row in connection.execute(query)}  # latest wins


def _policy_name(version: int | None) -> str | None:
    """The case's policy: the version that decided the alert opening it (None: thresholds)."""
    return None if version is None else f"v{version}"


def _reason_features(reason_codes: str) -> list[str]:
    try:
        return [r["feature"] for r in json.loads(reason_codes) if "feature" in r]
    except (ValueError, TypeError, KeyError):
        return []


class CaseIngester:
    """Turns pending alerts into cases, batch by batch."""

    def __init__(
        self,
        engine: Engine,
        rules: RoutingRules,
        join_window: dt.timedelta,
        batch: int = 5000,
        auto_assign: bool = False,
    ) -> None:
        self.engine, self.rules, self.join_window, self.batch = engine, rules, join_window, batch
        self.auto_assign = auto_assign
        ALERT_STORE_TABLES.create_all(engine)  # the scorers may not have written yet
        self.queues = sync_queues(engine, rules)
        with engine.connect() as connection:
            self.sla = dict(connection.execute(sa.select(QUEUES.c.id, QUEUES.c.sla_minutes)).all())

    def ingest_all(self) -> Ingested:
        """Ingest until no alert is pending."""
        total = Ingested()
        while True:
            done = self.ingest_batch()
            if not done.alerts:
                return total
            total.alerts += done.alerts
            total.opened += done.opened
            total.joined += done.joined
            total.case_ids |= done.case_ids

    def ingest_batch(self) -> Ingested:
        """Ingest up to one batch of pending alerts, in one transaction."""
        with self.engine.begin() as connection:
            alerts = _pending(connection, self.batch)
            if not alerts:
                return Ingested()
            done = self._into_cases(connection, alerts)
            cased = [{"transaction_id": a.transaction_id, "status": CASED} for a in alerts]
            bulk_update(connection, ALERTS, "transaction_id", cased)
            return done

    def _into_cases(self, connection: Connection, alerts: list[Any]) -> Ingested:
        now = utcnow()
        by_customer: dict[int, list[Any]] = defaultdict(list)
        for alert in _not_cased(connection, alerts):
            by_customer[alert.customer_id].append(alert)
        _lock_customers(connection, list(by_customer))
        existing = {
            customer: _Draft.of_row(row)
            for customer, row in _open_cases(connection, list(by_customer)).items()
        }
        drafts: list[_Draft] = []
        for customer, group in by_customer.items():
            case = existing.get(customer)
            for alert in group:
                if case is None or alert.tx_datetime - case.last_alert_at > self.join_window:
                    case = self._draft(alert, now)
                    drafts.append(case)
                else:
                    case.add(alert)
        assigned = self._assign(connection, drafts) if self.auto_assign else []
        self._insert(connection, drafts, now)
        touched = [c for c in existing.values() if c.alerts]
        _update(connection, touched, now)
        members = [case_alert_row(c.id, a) for c in drafts + touched for a in c.alerts]
        events = [
            system_event(c.id, now, "opened", {"rule": c.row["routing_rule"]}) for c in drafts
        ]
        events += [
            system_event(c.id, now, "assigned", {"user_id": c.row["assignee_id"]}) for c in assigned
        ]
        added = [(c.id, a) for c in drafts for a in c.alerts[1:]]
        added += [(c.id, a) for c in touched for a in c.alerts]
        events += [system_event(i, now, "alert.added", {"tx": a.transaction_id}) for i, a in added]
        bulk_insert(connection, CASE_ALERTS, members)
        bulk_insert(connection, CASE_EVENTS, events)
        joined = len(members) - len(drafts)
        return Ingested(len(alerts), len(drafts), joined, {c.id for c in drafts + touched})

    def _draft(self, alert: Any, now: dt.datetime) -> _Draft:
        facts = CaseFacts(
            alert.decision,
            alert.tx_amount,
            alert.risk_score,
            _reason_features(alert.reason_codes),
            alert.variant,
        )
        queue_name, rule = route(self.rules, facts)
        if alert.route is not None and alert.route in self.queues:  # a policy route rule
            queue_name, rule = alert.route, "policy-route"
        queue_id = self.queues[queue_name]
        row = {
            "customer_id": alert.customer_id,
            "queue_id": queue_id,
            "status": Status.NEW.value,
            "assignee_id": None,
            "priority": 0.0,
            "amount_total": 0.0,
            "max_risk": 0.0,
            "alert_count": 0,
            "decision": alert.decision,
            "model_version": alert.model_version,
            "variant": alert.variant,
            "policy_version": _policy_name(alert.policy_version),
            "routing_rule": f"v{self.rules.version}:{rule}",
            "opened_at": now,
            "last_alert_at": alert.tx_datetime,
            "due_at": now + dt.timedelta(minutes=self.sla[queue_id]),
            "updated_at": now,
            "version": 1,
        }
        draft = _Draft(0, row)
        draft.add(alert)
        return draft

    def _assign(self, connection: Connection, drafts: list[_Draft]) -> list[_Draft]:
        """Give each new case to the least-loaded member of its queue (if it has members)."""
        loads = member_loads(connection, sorted({d.row["queue_id"] for d in drafts}))
        assigned = []
        for draft in drafts:
            user_id = least_loaded(loads[draft.row["queue_id"]])
            if user_id is not None:
                draft.row.update(status=Status.ASSIGNED.value, assignee_id=user_id)
                assigned.append(draft)
        return assigned

    def _insert(self, connection: Connection, drafts: list[_Draft], now: dt.datetime) -> None:
        if not drafts:
            return
        ids = allocate_ids(connection, CASES, len(drafts))
        if ids is None:  # SQLite: the ids come back from the insert, in order
            insert = CASES.insert().returning(CASES.c.id, sort_by_parameter_order=True)
            ids = list(connection.execute(insert, [d.row for d in drafts]).scalars())
        else:
            bulk_insert(
                connection, CASES, [{"id": i, **d.row} for i, d in zip(ids, drafts, strict=True)]
            )
        for draft, case_id in zip(drafts, ids, strict=True):
            draft.id = case_id


@dataclass
class _Draft:
    """A case being built or extended by one batch (written in bulk at its end)."""

    id: int
    row: dict[str, Any]
    alerts: list[Any] = field(default_factory=list)

    @classmethod
    def of_row(cls, row: Any) -> _Draft:
        return cls(row.id, dict(row._mapping))

    @property
    def last_alert_at(self) -> dt.datetime:
        return self.row["last_alert_at"]  # type: ignore[no-any-return]

    def add(self, alert: Any) -> None:
        row = self.row
        row["priority"] += alert.risk_score * alert.tx_amount * (alert.priority_factor or 1.0)
        row["amount_total"] += alert.tx_amount
        row["max_risk"] = max(row["max_risk"], alert.risk_score)
        row["alert_count"] += 1
        if alert.decision == DECLINE:
            row["decision"] = DECLINE
        row["last_alert_at"] = max(row["last_alert_at"], alert.tx_datetime)
        self.alerts.append(alert)


_UPDATED = ("priority", "amount_total", "max_risk", "alert_count", "decision", "last_alert_at")


def _update(connection: Connection, cases: list[_Draft], now: dt.datetime) -> None:
    """Write the cases a batch extended (one statement for all)."""
    rows = [{"id": c.id, **{n: c.row[n] for n in _UPDATED}, "updated_at": now} for c in cases]
    bulk_update(connection, CASES, "id", rows, increment="version")


def _not_cased(connection: Connection, alerts: list[Any]) -> list[Any]:
    """The alerts of a batch no case holds yet (a crash between the two writes is covered)."""
    ids = [a.transaction_id for a in alerts]
    query = sa.select(CASE_ALERTS.c.transaction_id).where(CASE_ALERTS.c.transaction_id.in_(ids))
    cased = {row[0] for row in connection.execute(query)}
    return [a for a in alerts if a.transaction_id not in cased]


def case_alert_row(
    case_id: int, alert: Any, alerted_at: dt.datetime | None = None
) -> dict[str, Any]:
    """The ``case_alerts`` row of an alert (a store row, or any object with its fields)."""
    return {
        "transaction_id": alert.transaction_id,
        "case_id": case_id,
        "customer_id": alert.customer_id,
        "terminal_id": alert.terminal_id,
        "tx_datetime": alert.tx_datetime,
        "tx_amount": alert.tx_amount,
        "risk_score": alert.risk_score,
        "decision": alert.decision,
        "reason_codes": alert.reason_codes,
        "model_version": alert.model_version,
        "variant": alert.variant,
        "alerted_at": alerted_at or alert.created_at,
    }


def system_event(case_id: int, at: dt.datetime, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A ``case_events`` row written by the platform (not a person)."""
    return {"case_id": case_id, "at": at, "actor": "system", "type": kind, "data": json.dumps(data)}
