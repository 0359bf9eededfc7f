"""The SLA job: open cases past their queue's due time are escalated (each on the timeline).

A snoozed case is left alone until it wakes. Escalation keeps the assignee; a senior analyst
sees escalated cases of every queue.
"""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fraudrisk.cases.lifecycle import Status
from fraudrisk.cases.tables import CASE_EVENTS, CASES
from fraudrisk.identity import audit
from fraudrisk.identity.audit import SYSTEM

#: The statuses the SLA job escalates from.
ESCALATES = (Status.NEW.value, Status.ASSIGNED.value, Status.INVESTIGATING.value)


def escalate_breached(engine: Engine, now: dt.datetime, limit: int = 1000) -> list[int]:
    """Escalate the open cases past their due time; returns their ids."""
    breached = (
        sa.select(CASES.c.id, CASES.c.status, CASES.c.due_at)
        .where(CASES.c.status.in_(ESCALATES), CASES.c.due_at < now)
        .where(sa.or_(CASES.c.snoozed_until.is_(None), CASES.c.snoozed_until <= now))
        .order_by(CASES.c.due_at)
        .limit(limit)
    )
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            breached = breached.with_for_update(skip_locked=True)
        rows = connection.execute(breached).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        connection.execute(
            CASES.update()
            .where(CASES.c.id.in_(ids))
            .values(status=Status.ESCALATED.value, updated_at=now, version=CASES.c.version + 1)
        )
        events = [
            {
                "case_id": row.id,
                "at": now,
                "actor": SYSTEM.username,
                "type": "sla.breached",
                "data": json.dumps({"from": row.status, "due_at": row.due_at.isoformat()}),
            }
            for row in rows
        ]
        connection.execute(CASE_EVENTS.insert(), events)
        audit.record(
            connection,
            SYSTEM,
            "case.sla-escalate",
            "case",
            ",".join(map(str, ids))[:64],
            {"cases": ids},
        )
    return ids
