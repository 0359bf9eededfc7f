"""Resolutions become labels: on the ``labels`` topic and in the lake's labels table.

A case resolved *confirmed fraud* labels each of its transactions fraud, *legitimate* not
fraud, *inconclusive* nothing. Each label carries its time (the resolution's), its source
(``analyst``), who gave it and the case: monitoring and the next training run read labels
point in time, so a label exists for them only from its label time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fraudrisk.cases.tables import CASE_ALERTS
from fraudrisk.cases.work import Resolution
from fraudrisk.data.labels import LabelMessage, LabelsTable

log = logging.getLogger(__name__)
ANALYST = "analyst"


def resolution_labels(engine: Engine, resolution: Resolution) -> list[LabelMessage]:
    """The labels a resolution gives (none for an inconclusive one)."""
    if resolution.label is None:
        return []
    query = sa.select(
        CASE_ALERTS.c.transaction_id,
        CASE_ALERTS.c.customer_id,
        CASE_ALERTS.c.terminal_id,
        CASE_ALERTS.c.tx_datetime,
    ).where(CASE_ALERTS.c.case_id == resolution.case_id)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
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
        for row in rows
    ]


class LabelPublisher:
    """Writes a resolution's labels to the labels table, then sends them to the topic."""

    def __init__(
        self,
        engine: Engine,
        table: LabelsTable,
        send: Callable[[Sequence[LabelMessage]], int] | None = None,
    ) -> None:
        self.engine, self.table, self.send = engine, table, send

    def __call__(self, resolution: Resolution) -> None:
        """Publish the labels of one resolution (the table first: it is the record)."""
        labels = resolution_labels(self.engine, resolution)
        if not labels:
            return
        self.table.append(labels)
        if self.send is not None:
            self.send(labels)
        log.info("case %d: %d %s labels published", resolution.case_id, len(labels), ANALYST)
