"""Queues: who works them, and how each is doing (open cases, age, SLA breaches)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from fraudrisk.cases.lifecycle import OPEN_STATUSES
from fraudrisk.cases.queries import visible_queue_ids
from fraudrisk.cases.tables import CASES, QUEUE_MEMBERS, QUEUES
from fraudrisk.identity import audit
from fraudrisk.identity.errors import UnknownUserError
from fraudrisk.identity.principal import Principal
from fraudrisk.identity.roles import Permission
from fraudrisk.identity.tables import USERS


class QueueView(BaseModel):
    """A queue and how it is doing now."""

    name: str
    description: str
    sla_minutes: int
    members: list[str]
    open_cases: int
    unassigned: int
    sla_breached: int
    oldest_opened_at: dt.datetime | None


def _counts(engine: Engine, now: dt.datetime) -> dict[int, Any]:
    is_open = CASES.c.status.in_(OPEN_STATUSES)
    query = (
        sa.select(
            CASES.c.queue_id,
            sa.func.count().label("open_cases"),
            sa.func.count(CASES.c.assignee_id).label("assigned"),
            sa.func.sum(sa.case((CASES.c.due_at < now, 1), else_=0)).label("breached"),
            sa.func.min(CASES.c.opened_at).label("oldest"),
        )
        .where(is_open)
        .group_by(CASES.c.queue_id)
    )
    with engine.connect() as connection:
        return {row.queue_id: row for row in connection.execute(query)}


def list_queues(engine: Engine, principal: Principal, now: dt.datetime) -> list[QueueView]:
    """The queues the person may see, with their members and open-case figures."""
    principal.require(Permission.CASES_READ)
    with engine.connect() as connection:
        visible = visible_queue_ids(connection, principal)
        queues = connection.execute(sa.select(QUEUES).order_by(QUEUES.c.name)).all()
        members = connection.execute(
            sa.select(QUEUE_MEMBERS.c.queue_id, USERS.c.username).join(
                USERS, USERS.c.id == QUEUE_MEMBERS.c.user_id
            )
        ).all()
    counts = _counts(engine, now)
    views = []
    for queue in queues:
        if visible is not None and queue.id not in visible:
            continue
        figures = counts.get(queue.id)
        views.append(
            QueueView(
                name=queue.name,
                description=queue.description,
                sla_minutes=queue.sla_minutes,
                members=sorted(u for q, u in members if q == queue.id),
                open_cases=figures.open_cases if figures else 0,
                unassigned=(figures.open_cases - figures.assigned) if figures else 0,
                sla_breached=int(figures.breached or 0) if figures else 0,
                oldest_opened_at=figures.oldest if figures else None,
            )
        )
    return views


def set_membership(
    engine: Engine, principal: Principal, queue: str, username: str, member: bool
) -> None:
    """Add a person to a queue, or remove them (audited).

    Raises:
        PermissionDeniedError: Without ``queues:manage``.
        UnknownUserError: For an unknown queue or user.
    """
    principal.require(Permission.QUEUES_MANAGE)
    with engine.begin() as connection:
        queue_id = connection.execute(sa.select(QUEUES.c.id).where(QUEUES.c.name == queue)).scalar()
        user_id = connection.execute(
            sa.select(USERS.c.id).where(USERS.c.username == username)
        ).scalar()
        if queue_id is None or user_id is None:
            raise UnknownUserError(f"no queue {queue!r} or no user {username!r}")
        table = QUEUE_MEMBERS
        where = (table.c.queue_id == queue_id) & (table.c.user_id == user_id)
        connection.execute(table.delete().where(where))
        if member:
            connection.execute(table.insert().values(queue_id=queue_id, user_id=user_id))
        action = "queue.member.add" if member else "queue.member.remove"
        audit.record(connection, principal.actor, action, "queue", queue, {"user": username})
