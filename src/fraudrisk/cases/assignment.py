"""Auto-assignment: a new case goes to the least-loaded member of its queue.

Load is the number of open cases a member holds (across queues); ties go to the lowest user id,
so the choice is deterministic. Disabled users get nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fraudrisk.cases.lifecycle import OPEN_STATUSES
from fraudrisk.cases.tables import CASES, QUEUE_MEMBERS
from fraudrisk.identity.tables import USERS


def member_loads(connection: Connection, queue_ids: list[int]) -> dict[int, dict[int, int]]:
    """Per queue, each active member's open-case count."""
    members = connection.execute(
        sa.select(QUEUE_MEMBERS.c.queue_id, QUEUE_MEMBERS.c.user_id)
        .join(USERS, USERS.c.id == QUEUE_MEMBERS.c.user_id)
        .where(QUEUE_MEMBERS.c.queue_id.in_(queue_ids), USERS.c.disabled.is_(False))
    ).all()
    held: dict[int, int] = dict(
        connection.execute(
            sa.select(CASES.c.assignee_id, sa.func.count())
            .where(CASES.c.assignee_id.is_not(None), CASES.c.status.in_(OPEN_STATUSES))
            .group_by(CASES.c.assignee_id)
        ).all()
    )
    loads: dict[int, dict[int, int]] = {q: {} for q in queue_ids}
    for queue_id, user_id in members:
        loads[queue_id][user_id] = int(held.get(user_id, 0))
    return loads


def least_loaded(loads: dict[int, int]) -> int | None:
    """The member to assign next (and count the case against them), or None without members."""
    if not loads:
        return None
    chosen = min(loads, key=lambda user: (loads[user], user))
    loads[chosen] += 1
    return chosen
