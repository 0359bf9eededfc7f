"""Live case events for the dashboard, as Server-Sent Events read from the case timeline.

The timeline table is the source (every process writes to it), so any API replica streams
every event: new cases, assignments, moves, comments, SLA breaches. A client resumes where it
stopped with ``Last-Event-ID`` (or ``?after=``); a stream ends after ``timeout`` seconds and
the browser's EventSource reconnects by itself. Only events of cases the caller may see are sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from fraudrisk.cases.queries import visible_queue_ids
from fraudrisk.cases.tables import CASE_EVENTS, CASES, QUEUES
from fraudrisk.identity.principal import Principal

POLL_S = 1.0


def events_after(engine: Engine, principal: Principal, after: int, limit: int = 500) -> list[Any]:
    """The timeline events after id ``after`` of cases the person may see, oldest first."""
    query = (
        sa.select(CASE_EVENTS, CASES.c.queue_id, QUEUES.c.name.label("queue"))
        .join(CASES, CASES.c.id == CASE_EVENTS.c.case_id)
        .join(QUEUES, QUEUES.c.id == CASES.c.queue_id)
        .where(CASE_EVENTS.c.id > after)
        .order_by(CASE_EVENTS.c.id)
        .limit(limit)
    )
    with engine.connect() as connection:
        visible = visible_queue_ids(connection, principal)
        if visible is not None:
            query = query.where(CASES.c.queue_id.in_(visible))
        return list(connection.execute(query))


def last_event_id(engine: Engine) -> int:
    """The newest event's id (a new stream starts after it unless told otherwise)."""
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.max(CASE_EVENTS.c.id))).scalar() or 0)


def sse(row: Any) -> str:
    """One event in the text/event-stream format."""
    data = {
        "case_id": row.case_id,
        "queue": row.queue,
        "type": row.type,
        "actor": row.actor,
        "at": row.at.isoformat(),
        "data": json.loads(row.data),
    }
    return f"id: {row.id}\nevent: {row.type}\ndata: {json.dumps(data)}\n\n"


async def stream(
    engine: Engine,
    principal: Principal,
    after: int,
    timeout_s: float,
    clock: Callable[[], float],
) -> AsyncIterator[str]:
    """Events as they are written, until ``timeout_s`` has passed."""
    deadline = clock() + timeout_s
    yield "retry: 2000\n\n"
    while clock() < deadline:
        rows = await run_in_threadpool(events_after, engine, principal, after)
        for row in rows:
            after = row.id
            yield sse(row)
        if not rows:
            yield ": keep-alive\n\n"
            await asyncio.sleep(min(POLL_S, max(deadline - clock(), 0)))
