"""The audit log: who did what, when, to which object, what changed, from where.

Append-only twice over: no code path updates or deletes a row, and the database refuses it
(triggers made by the migration). Each entry also carries the SHA-256 of the previous entry
and its own content (a hash chain): :meth:`AuditLog.verify` finds an entry altered or removed
by someone with direct write access who dropped the triggers. Entries are written in the same
database transaction as the change they record, so one never exists without the other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fraudrisk.identity.tables import AUDIT_LOG
from fraudrisk.io.database import lock_for_write, utcnow

GENESIS = "0" * 64
_PG_AUDIT_LOCK = 7_310_001  # advisory lock: one chain, appended one entry at a time


@dataclass(frozen=True)
class Actor:
    """A person (or the system) acting, and where from."""

    username: str
    source: str = "cli"


SYSTEM = Actor("system", "platform")


@dataclass(frozen=True)
class AuditQuery:
    """Filters of an audit-log read (all optional), newest first."""

    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 100
    before_id: int | None = None


def _entry_hash(prev_hash: str, row: dict[str, Any]) -> str:
    content = json.dumps(
        {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()},
        sort_keys=True,
    )
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


def record(
    connection: Connection,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str | int,
    change: dict[str, Any] | None = None,
) -> None:
    """Append one entry, inside the caller's transaction (``change`` must hold no secret)."""
    lock_for_write(connection, _PG_AUDIT_LOCK)  # read the chain's end under the write lock
    last = connection.execute(
        sa.select(AUDIT_LOG.c.hash).order_by(AUDIT_LOG.c.id.desc()).limit(1)
    ).scalar()
    row = {
        "at": utcnow(),
        "actor": actor.username,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "change": json.dumps(change or {}, sort_keys=True, default=str),
        "source": actor.source[:64],
    }
    prev_hash = last or GENESIS
    connection.execute(
        AUDIT_LOG.insert().values(**row, prev_hash=prev_hash, hash=_entry_hash(prev_hash, row))
    )


class AuditLog:
    """Reading the audit log (writing is :func:`record`, inside each change's transaction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def read(self, query: AuditQuery = AuditQuery()) -> list[dict[str, Any]]:
        """Entries matching the filters, newest first (page with ``before_id``)."""
        table = AUDIT_LOG
        select = sa.select(table).order_by(table.c.id.desc()).limit(min(query.limit, 1000))
        for column in ("actor", "action", "object_type", "object_id"):
            value = getattr(query, column)
            if value is not None:
                select = select.where(table.c[column] == value)
        if query.since is not None:
            select = select.where(table.c.at >= query.since)
        if query.until is not None:
            select = select.where(table.c.at < query.until)
        if query.before_id is not None:
            select = select.where(table.c.id < query.before_id)
        with self.engine.connect() as connection:
            return [_readable(row._mapping) for row in connection.execute(select)]

    def verify(self) -> int | None:
        """The id of the first entry whose chain is broken, or ``None`` if it is intact."""
        prev_hash = GENESIS
        for row in self._all():
            content = {k: row[k] for k in row if k not in ("id", "prev_hash", "hash")}
            if row["prev_hash"] != prev_hash or row["hash"] != _entry_hash(prev_hash, content):
                return int(row["id"])
            prev_hash = row["hash"]
        return None

    def _all(self) -> Iterator[dict[str, Any]]:
        with self.engine.connect() as connection:
            for row in connection.execute(sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.id)):
                yield dict(row._mapping)


def _readable(row: Any) -> dict[str, Any]:
    entry = {k: row[k] for k in ("id", "at", "actor", "action", "object_type", "object_id")}
    entry.update(change=json.loads(row["change"]), source=row["source"])
    return entry
