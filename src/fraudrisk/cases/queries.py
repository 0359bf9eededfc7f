"""Reading cases: a queue page sorted by priority, and the whole case view.

Every read is limited to what the person may see: without ``cases:read-all`` only the cases
of queues they are a member of (a case outside them is "not found", never "forbidden", so ids
cannot be probed).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fraudrisk.alerts.store import SCORES
from fraudrisk.cases.errors import CaseNotFoundError
from fraudrisk.cases.tables import CASE_ALERTS, CASE_EVENTS, CASES, QUEUE_MEMBERS, QUEUES
from fraudrisk.cases.views import (
    Activity,
    AlertView,
    CaseSummary,
    CaseView,
    Event,
    Reason,
    parse_reasons,
)
from fraudrisk.identity.principal import Principal
from fraudrisk.identity.roles import Permission
from fraudrisk.identity.tables import USERS

ASSIGNEE = USERS.alias("assignee")
MAX_PAGE = 200


class Baselines(Protocol):
    """The customer's usual value of each feature (before a time), for the case view."""

    def customer_baseline(
        self, customer_id: int, features: Sequence[str], before: dt.datetime
    ) -> dict[str, float]:
        """Mean value of each feature over the customer's earlier transactions."""
        ...


@dataclass(frozen=True)
class CaseFilter:
    """Which cases a list shows (all optional), and the page."""

    queue: str | None = None
    status: Sequence[str] = ()
    assignee: str | None = None
    customer_id: int | None = None
    min_priority: float | None = None
    limit: int = 50
    offset: int = 0


def visible_queue_ids(connection: Connection, principal: Principal) -> list[int] | None:
    """The queues a person may see (``None``: every queue)."""
    if principal.can(Permission.CASES_READ_ALL):
        return None
    query = sa.select(QUEUE_MEMBERS.c.queue_id).where(QUEUE_MEMBERS.c.user_id == principal.user_id)
    return [row[0] for row in connection.execute(query)]


def summary_select() -> sa.Select[Any]:
    """Cases with their queue name and assignee's username."""
    return (
        sa.select(CASES, QUEUES.c.name.label("queue_name"), ASSIGNEE.c.username.label("assignee"))
        .join(QUEUES, QUEUES.c.id == CASES.c.queue_id)
        .outerjoin(ASSIGNEE, ASSIGNEE.c.id == CASES.c.assignee_id)
    )


def summary(row: Any, now: dt.datetime) -> CaseSummary:
    """A listed case from a row of :func:`summary_select`."""
    open_ = row.resolved_at is None
    return CaseSummary(
        id=row.id,
        customer_id=row.customer_id,
        queue=row.queue_name,
        status=row.status,
        disposition=row.disposition,
        assignee=row.assignee,
        priority=round(row.priority, 2),
        amount_total=round(row.amount_total, 2),
        max_risk=row.max_risk,
        alert_count=row.alert_count,
        decision=row.decision,
        opened_at=row.opened_at,
        due_at=row.due_at,
        snoozed_until=row.snoozed_until,
        resolved_at=row.resolved_at,
        version=row.version,
        sla_breached=open_ and row.due_at < now,
    )


def list_cases(
    connection: Connection, principal: Principal, where: CaseFilter, now: dt.datetime
) -> list[CaseSummary]:
    """A page of cases, highest priority (expected loss) first."""
    query = summary_select()
    visible = visible_queue_ids(connection, principal)
    if visible is not None:
        query = query.where(CASES.c.queue_id.in_(visible))
    if where.queue:
        query = query.where(QUEUES.c.name == where.queue)
    if where.status:
        query = query.where(CASES.c.status.in_(list(where.status)))
    if where.assignee:
        query = query.where(ASSIGNEE.c.username == where.assignee)
    if where.customer_id is not None:
        query = query.where(CASES.c.customer_id == where.customer_id)
    if where.min_priority is not None:
        query = query.where(CASES.c.priority >= where.min_priority)
    query = (
        query.order_by(CASES.c.priority.desc(), CASES.c.id)
        .limit(min(max(where.limit, 1), MAX_PAGE))
        .offset(max(where.offset, 0))
    )
    return [summary(row, now) for row in connection.execute(query)]


def visible_case(connection: Connection, principal: Principal, case_id: int) -> Any:
    """The row of a case the person may see.

    Raises:
        CaseNotFoundError: If there is none, or it is outside their queues.
    """
    row = connection.execute(summary_select().where(CASES.c.id == case_id)).first()
    visible = visible_queue_ids(connection, principal)
    if row is None or (visible is not None and row.queue_id not in visible):
        raise CaseNotFoundError(f"no case {case_id} in your queues")
    return row


def _activity(connection: Connection, column: Any, value: int, limit: int) -> list[Activity]:
    query = (
        sa.select(*(SCORES.c[name] for name in Activity.model_fields))
        .where(column == value)
        .order_by(SCORES.c.tx_datetime.desc())
        .limit(limit)
    )
    return [Activity(**row._mapping) for row in connection.execute(query)]


def case_view(
    connection: Connection,
    principal: Principal,
    case_id: int,
    now: dt.datetime,
    baselines: Baselines | None = None,
) -> CaseView:
    """The whole case: alerts, reasons against the customer's baseline, activity, timeline."""
    row = visible_case(connection, principal, case_id)
    alert_rows = connection.execute(
        sa.select(CASE_ALERTS)
        .where(CASE_ALERTS.c.case_id == case_id)
        .order_by(CASE_ALERTS.c.tx_datetime)
    ).all()
    alerts = [
        AlertView(**{**a._mapping, "reason_codes": parse_reasons(a.reason_codes)})
        for a in alert_rows
    ]
    events = connection.execute(
        sa.select(CASE_EVENTS).where(CASE_EVENTS.c.case_id == case_id).order_by(CASE_EVENTS.c.id)
    )
    earlier = connection.execute(
        summary_select()
        .where(CASES.c.customer_id == row.customer_id, CASES.c.id != case_id)
        .order_by(CASES.c.opened_at.desc())
        .limit(20)
    )
    terminal = alerts[-1].terminal_id if alerts else -1
    return CaseView(
        case=summary(row, now),
        model_version=row.model_version,
        variant=row.variant,
        policy_version=row.policy_version,
        routing_rule=row.routing_rule,
        alerts=alerts,
        reasons=_reasons(alerts, row.customer_id, baselines),
        customer_activity=_activity(connection, SCORES.c.customer_id, row.customer_id, 50),
        terminal_activity=_activity(connection, SCORES.c.terminal_id, terminal, 50),
        earlier_cases=[summary(r, now) for r in earlier],
        timeline=[
            Event(at=e.at, actor=e.actor, type=e.type, data=json.loads(e.data)) for e in events
        ],
    )


def _reasons(
    alerts: list[AlertView], customer_id: int, baselines: Baselines | None
) -> list[Reason]:
    """The reasons of the riskiest alert, each beside the customer's usual value."""
    if not alerts:
        return []
    top = max(alerts, key=lambda a: a.risk_score)
    codes = [r for r in top.reason_codes if "feature" in r]
    usual: dict[str, float] = {}
    if baselines is not None and codes:
        features = [str(r["feature"]) for r in codes]
        usual = baselines.customer_baseline(customer_id, features, top.tx_datetime)
    return [
        Reason(
            feature=str(r["feature"]),
            value=float(r.get("value", 0.0)),
            contribution=float(r.get("contribution", 0.0)),
            customer_baseline=usual.get(str(r["feature"])),
        )
        for r in codes
    ]
