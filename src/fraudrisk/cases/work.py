"""Working cases: every move of the lifecycle, comments, claim-next and bulk actions.

Each change is one database transaction that checks the case's version (a stale edit is a
conflict, never a lost update), moves it as :mod:`~fraudrisk.cases.lifecycle` allows, writes
its timeline event and the audit log entry. "Claim next" takes the highest-priority
unassigned case of a queue in one statement that skips rows another claim holds
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers): two analysts never get
the same case. A resolution's labels go into the label outbox in its own transaction and are
delivered after commit (:mod:`fraudrisk.cases.labels`); ``on_resolved`` hears of it after commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fraudrisk.cases.errors import CaseNotFoundError, NothingToClaimError, VersionConflictError
from fraudrisk.cases.lifecycle import LABEL_OF, Action, Disposition, Status, next_status
from fraudrisk.cases.queries import summary, summary_select, visible_case, visible_queue_ids
from fraudrisk.cases.tables import CASE_ALERTS, CASE_EVENTS, CASES, QUEUE_MEMBERS, QUEUES
from fraudrisk.cases.views import CaseSummary, Event
from fraudrisk.identity import audit
from fraudrisk.identity.errors import PermissionDeniedError
from fraudrisk.identity.principal import Principal
from fraudrisk.identity.roles import Permission, permissions_of
from fraudrisk.identity.tables import USERS
from fraudrisk.io.database import utcnow


@dataclass(frozen=True)
class Resolution:
    """A resolved case, as the label publisher needs it."""

    case_id: int
    customer_id: int
    transaction_ids: list[int]
    disposition: Disposition
    label: int | None
    resolved_at: dt.datetime
    resolved_by: str


class Outbox(Protocol):
    """Where a resolution's labels wait for delivery (:class:`~.labels.LabelOutbox`)."""

    def add(self, connection: Connection, resolution: Resolution) -> int | None:
        """Keep the labels in the resolution's transaction; the entry's id (None: no label)."""
        ...

    def deliver(self, ids: Sequence[int] | None = None, limit: int = ...) -> Any:
        """Deliver pending entries; never raises."""
        ...


@dataclass(frozen=True)
class Move:
    """One action on one case, with what it needs."""

    action: Action
    version: int | None = None
    disposition: Disposition | None = None
    assignee: str | None = None
    until: dt.datetime | None = None
    note: str = ""


class CaseWork:
    """The changes people make to cases."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], dt.datetime] = utcnow,
        on_resolved: Callable[[Resolution], None] | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.engine, self.clock, self.on_resolved = engine, clock, on_resolved
        self.outbox = outbox

    def act(self, principal: Principal, case_id: int, move: Move) -> CaseSummary:
        """Apply one move to a case.

        Raises:
            CaseNotFoundError: If the case is not in the person's queues.
            PermissionDeniedError: If their role does not allow the move.
            IllegalTransitionError: If the move is not allowed from the case's status.
            VersionConflictError: If ``move.version`` is stale.
            ValueError: If the move lacks what it needs (a disposition, a wake-up time).
        """
        principal.require(Permission.CASES_WORK)
        resolution, entry = None, None
        with self.engine.begin() as connection:
            row = visible_case(connection, principal, case_id)
            values, data = self._values(connection, principal, row, move)
            self._update(connection, row, move.version, values)
            self._event(connection, case_id, principal.username, move.action.value, data)
            audit.record(
                connection, principal.actor, f"case.{move.action.value}", "case", case_id, data
            )
            if move.action is Action.RESOLVE:
                resolution = self._resolution(connection, row, move, principal.username)
                if self.outbox is not None:
                    entry = self.outbox.add(connection, resolution)
            after = summary(
                connection.execute(summary_select().where(CASES.c.id == case_id)).one(),
                self.clock(),
            )
        if entry is not None and self.outbox is not None:
            self.outbox.deliver([entry])
        if resolution is not None and self.on_resolved is not None:
            self.on_resolved(resolution)
        return after

    def _values(
        self, connection: Connection, principal: Principal, row: Any, move: Move
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        status = next_status(row.status, move.action)
        now = self.clock()
        values: dict[str, Any] = {"status": status.value}
        data: dict[str, Any] = {"from": row.status, "to": status.value}
        if move.note:
            data["note"] = move.note[:2000]
        if move.action in (Action.ASSIGN, Action.CLAIM):
            username = move.assignee or principal.username
            if username != principal.username:  # claiming for someone else is assigning
                principal.require(Permission.CASES_ASSIGN)
            values["assignee_id"] = self._member(connection, row.queue_id, username)
            data["assignee"] = username
        elif move.action is Action.UNASSIGN:
            values["assignee_id"] = None
        elif move.action is Action.RESOLVE:
            if move.disposition is None:
                choices = ", ".join(d.value for d in Disposition)
                raise ValueError(f"resolving a case needs a disposition: one of {choices}")
            values.update(disposition=move.disposition.value, resolved_at=now, snoozed_until=None)
            data["disposition"] = move.disposition.value
        elif move.action is Action.REOPEN:
            values.update(disposition=None, resolved_at=None)
        elif move.action is Action.SNOOZE:
            if move.until is None or move.until <= now:
                raise ValueError("snoozing a case needs a wake-up time in the future")
            values["snoozed_until"] = move.until
            data["until"] = move.until.isoformat()
        return values, data

    def _member(self, connection: Connection, queue_id: int, username: str) -> int:
        """The user id of a queue member (or of anyone who may see every queue)."""
        user = connection.execute(
            sa.select(USERS.c.id, USERS.c.role, USERS.c.disabled).where(
                USERS.c.username == username
            )
        ).first()
        if user is None or user.disabled:
            raise ValueError(f"no active user named {username!r}")
        member = connection.execute(
            sa.select(QUEUE_MEMBERS.c.user_id).where(
                QUEUE_MEMBERS.c.queue_id == queue_id, QUEUE_MEMBERS.c.user_id == user.id
            )
        ).first()
        if member is None and Permission.CASES_READ_ALL not in permissions_of(user.role):
            raise PermissionDeniedError(f"{username} is not a member of the case's queue")
        return int(user.id)

    def _update(
        self, connection: Connection, row: Any, version: int | None, values: dict[str, Any]
    ) -> None:
        expected = row.version if version is None else version
        result = connection.execute(
            CASES.update()
            .where(CASES.c.id == row.id, CASES.c.version == expected)
            .values(**values, updated_at=self.clock(), version=CASES.c.version + 1)
        )
        if result.rowcount != 1:
            found = connection.execute(
                sa.select(CASES.c.version).where(CASES.c.id == row.id)
            ).scalar_one()
            raise VersionConflictError(row.id, expected, found)

    def _event(
        self, connection: Connection, case_id: int, actor: str, kind: str, data: dict[str, Any]
    ) -> None:
        connection.execute(
            CASE_EVENTS.insert().values(
                case_id=case_id,
                at=self.clock(),
                actor=actor,
                type=kind,
                data=json.dumps(data, default=str),
            )
        )

    def _resolution(
        self, connection: Connection, row: Any, move: Move, username: str
    ) -> Resolution:
        assert move.disposition is not None
        ids = (
            connection.execute(
                sa.select(CASE_ALERTS.c.transaction_id).where(CASE_ALERTS.c.case_id == row.id)
            )
            .scalars()
            .all()
        )
        return Resolution(
            row.id,
            row.customer_id,
            [int(i) for i in ids],
            move.disposition,
            LABEL_OF[move.disposition],
            self.clock(),
            username,
        )

    def comment(self, principal: Principal, case_id: int, text: str) -> Event:
        """Add a comment to a case's timeline (any status).

        Raises:
            CaseNotFoundError: If the case is not in the person's queues.
            ValueError: For an empty or too long comment.
        """
        principal.require(Permission.CASES_READ)
        text = text.strip()
        if not 0 < len(text) <= 10_000:
            raise ValueError("a comment has 1 to 10,000 characters")
        with self.engine.begin() as connection:
            visible_case(connection, principal, case_id)
            self._event(connection, case_id, principal.username, "comment", {"text": text})
            audit.record(
                connection, principal.actor, "case.comment", "case", case_id, {"length": len(text)}
            )
        return Event(at=self.clock(), actor=principal.username, type="comment", data={"text": text})

    def claim_next(self, principal: Principal, queue: str) -> CaseSummary:
        """Assign oneself the highest-priority unassigned, awake case of a queue.

        Raises:
            CaseNotFoundError: If the queue is not one of the person's.
            NothingToClaimError: If no case is waiting.
        """
        principal.require(Permission.CASES_WORK)
        now = self.clock()
        with self.engine.begin() as connection:
            queue_id = self._queue_id(connection, principal, queue)
            member = connection.execute(
                sa.select(QUEUE_MEMBERS.c.user_id).where(
                    QUEUE_MEMBERS.c.queue_id == queue_id,
                    QUEUE_MEMBERS.c.user_id == principal.user_id,
                )
            ).first()
            if member is None:
                raise PermissionDeniedError(
                    f"{principal.username} is not a member of queue {queue}"
                )
            waiting = (
                sa.select(CASES.c.id)
                .where(
                    CASES.c.queue_id == queue_id,
                    CASES.c.status == Status.NEW.value,
                    CASES.c.assignee_id.is_(None),
                )
                .where(sa.or_(CASES.c.snoozed_until.is_(None), CASES.c.snoozed_until <= now))
                .order_by(CASES.c.priority.desc(), CASES.c.id)
                .limit(1)
            )
            if connection.dialect.name == "postgresql":
                waiting = waiting.with_for_update(skip_locked=True)
            claimed = connection.execute(
                CASES.update()
                .where(CASES.c.id == waiting.scalar_subquery(), CASES.c.status == Status.NEW.value)
                .values(
                    status=Status.ASSIGNED.value,
                    assignee_id=principal.user_id,
                    updated_at=now,
                    version=CASES.c.version + 1,
                )
                .returning(CASES.c.id)
            ).scalar()
            if claimed is None:
                raise NothingToClaimError(f"no unassigned case is waiting in {queue}")
            data = {
                "from": Status.NEW.value,
                "to": Status.ASSIGNED.value,
                "assignee": principal.username,
            }
            self._event(connection, claimed, principal.username, Action.CLAIM.value, data)
            audit.record(connection, principal.actor, "case.claim", "case", claimed, data)
            return summary(
                connection.execute(summary_select().where(CASES.c.id == claimed)).one(), now
            )

    def _queue_id(self, connection: Connection, principal: Principal, queue: str) -> int:
        queue_id = connection.execute(sa.select(QUEUES.c.id).where(QUEUES.c.name == queue)).scalar()
        visible = visible_queue_ids(connection, principal)
        if queue_id is None or (visible is not None and queue_id not in visible):
            raise CaseNotFoundError(f"no queue {queue!r} among yours")
        return int(queue_id)

    def bulk(self, principal: Principal, case_ids: Sequence[int], move: Move) -> dict[int, str]:
        """Apply one move to many cases, each on its own; returns ``ok`` or the error, by id."""
        principal.require(Permission.CASES_ASSIGN)
        results: dict[int, str] = {}
        for case_id in list(dict.fromkeys(case_ids))[:500]:
            try:
                self.act(principal, case_id, dataclasses.replace(move, version=None))
                results[case_id] = "ok"
            except (
                CaseNotFoundError,
                ValueError,
                PermissionDeniedError,
                VersionConflictError,
            ) as error:
                results[case_id] = str(error)
        return results
