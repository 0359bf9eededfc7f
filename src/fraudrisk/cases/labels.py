"""Resolutions become labels: on the ``labels`` topic and in the lake's labels table.

A case resolved *confirmed fraud* labels each of its transactions fraud, *legitimate* not
fraud, *inconclusive* nothing. Each label carries its time (the resolution's), its source
(``analyst``), who gave it and the case: monitoring and the next training run read labels
point in time, so a label exists for them only from its label time.

**Nothing is lost** (a transactional outbox): the labels are written to ``label_outbox`` in the
resolution's own database transaction, so a resolution without its labels cannot commit. After
commit they are delivered — to the labels table (the record), then to the topic when one is
configured — and each delivery is marked done; one that fails (object store or broker down)
stays pending with its error and is retried by the service's background round
(:meth:`LabelOutbox.deliver`) until it succeeds. The request that resolved never fails for it.
A delivery may repeat (a crash between delivering and marking it): readers keep one label per
transaction (the newest), and a repeat is the same label, so it changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fraudrisk.cases.tables import CASE_ALERTS, LABEL_OUTBOX
from fraudrisk.cases.work import Resolution
from fraudrisk.data.labels import LabelMessage, LabelsTable
from fraudrisk.io.database import inserted_id, utcnow

log = logging.getLogger(__name__)
ANALYST = "analyst"
#: Deliveries tried per background round.
DELIVERY_BATCH = 200
#: Longest error text kept with a pending delivery.
_ERROR_CHARS = 500

Send = Callable[[Sequence[LabelMessage]], int]


def resolution_labels(connection: Connection, resolution: Resolution) -> list[LabelMessage]:
    """The labels a resolution gives (none for an inconclusive one)."""
    if resolution.label is None:
        return []
    query = sa.select(
        CASE_ALERTS.c.transaction_id,
        CASE_ALERTS.c.customer_id,
        CASE_ALERTS.c.terminal_id,
        CASE_ALERTS.c.tx_datetime,
    ).where(CASE_ALERTS.c.case_id == resolution.case_id)
    return [
        LabelMessage(
            transaction_id=row.transaction_id,
            tx_fraud=resolution.label,
            labelled_at=resolution.resolved_at,
            customer_id=row.customer_id,
            terminal_id=row.terminal_id,
            tx_datetime=row.tx_datetime,
            source=ANALYST,
            labelled_by=resolution.resolved_by,
            case_id=resolution.case_id,
        )
        for row in connection.execute(query)
    ]


@dataclass(frozen=True)
class Delivery:
    """What one round of deliveries did."""

    delivered: int = 0
    failed: int = 0


class LabelOutbox:
    """Resolutions' labels: kept in their transaction, delivered after commit, retried."""

    def __init__(
        self,
        engine: Engine,
        table: LabelsTable,
        send: Send | None = None,
        clock: Callable[[], Any] = utcnow,
    ) -> None:
        """Deliver to ``table``, and through ``send`` (the topic) when given."""
        self.engine, self.table, self.send, self.clock = engine, table, send, clock

    def add(self, connection: Connection, resolution: Resolution) -> int | None:
        """Keep a resolution's labels, in the resolution's transaction; the entry's id or None."""
        labels = resolution_labels(connection, resolution)
        if not labels:
            return None
        row = {
            "case_id": resolution.case_id,
            "labels": json.dumps([label.model_dump(mode="json") for label in labels]),
            "created_at": self.clock(),
            "attempts": 0,
        }
        return inserted_id(connection.execute(LABEL_OUTBOX.insert().values(**row)))

    def pending(self) -> int:
        """Entries some destination has not taken yet."""
        with self.engine.connect() as connection:
            query = sa.select(sa.func.count()).select_from(LABEL_OUTBOX).where(self._undelivered())
            return int(connection.execute(query).scalar_one())

    def deliver(self, ids: Sequence[int] | None = None, limit: int = DELIVERY_BATCH) -> Delivery:
        """Deliver pending entries (these ``ids`` only, or the oldest ``limit``); never raises."""
        query = sa.select(LABEL_OUTBOX).where(self._undelivered()).order_by(LABEL_OUTBOX.c.id)
        query = query.where(LABEL_OUTBOX.c.id.in_(ids)) if ids is not None else query.limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        done = [self._deliver_one(row) for row in rows]
        return Delivery(delivered=sum(done), failed=len(done) - sum(done))

    def _undelivered(self) -> Any:
        unsent = LABEL_OUTBOX.c.sent_at.is_(None) if self.send is not None else sa.false()
        return sa.or_(LABEL_OUTBOX.c.stored_at.is_(None), unsent)

    def _deliver_one(self, row: Any) -> bool:
        labels = [LabelMessage.model_validate(item) for item in json.loads(row.labels)]
        try:
            if row.stored_at is None:
                self.table.append(labels)
                self._mark(row.id, stored_at=self.clock())
            if self.send is not None and row.sent_at is None:
                self.send(labels)
                self._mark(row.id, sent_at=self.clock())
        except Exception as error:  # object store or broker down: retried next round
            text = f"{type(error).__name__}: {error}"[:_ERROR_CHARS]
            self._mark(row.id, attempts=row.attempts + 1, last_error=text)
            log.warning("case %d: labels not delivered yet (%s); will retry", row.case_id, text)
            return False
        log.info("case %d: %d %s labels delivered", row.case_id, len(labels), ANALYST)
        return True

    def _mark(self, entry_id: int, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                LABEL_OUTBOX.update().where(LABEL_OUTBOX.c.id == entry_id).values(**values)
            )
