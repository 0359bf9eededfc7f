"""The case service's Prometheus metrics, read from the database at each scrape.

Per queue: open cases, unassigned, SLA breaches, the oldest open case's age; resolved cases by
disposition, the median time to resolve, and the false-positive rate (legitimate among
resolved with a fraud/legitimate verdict) per queue and per routing rule — the figure that
tells a risk team which rule or queue wastes analysts' time. And the resolutions whose labels
the outbox has not written to the labels table yet, with the oldest one's age: a growing figure
means the lake's store is down.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from fraudrisk.cases.lifecycle import OPEN_STATUSES, Disposition
from fraudrisk.cases.tables import CASES, LABEL_OUTBOX, QUEUES


class CaseMetrics(Collector):
    """A collector of the case figures (register it on a registry)."""

    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime]) -> None:
        self.engine, self.clock = engine, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The figures now."""
        now = self.clock()
        with self.engine.connect() as connection:
            open_rows = connection.execute(_open_query(now)).all()
            resolved = connection.execute(_resolved_query()).all()
            waiting = connection.execute(_outbox_query()).one()
        yield from _open_families(open_rows, now)
        yield from _resolved_families(resolved)
        yield from _outbox_families(waiting, now)


def _outbox_query() -> sa.Select[Any]:
    """Outbox entries not in the labels table yet, and when the oldest of them was made."""
    columns: list[Any] = [
        sa.func.count().label("unstored"),
        sa.func.min(LABEL_OUTBOX.c.created_at).label("oldest"),
    ]
    return sa.select(*columns).where(LABEL_OUTBOX.c.stored_at.is_(None))


def _outbox_families(row: Any, now: dt.datetime) -> Iterator[GaugeMetricFamily]:
    yield GaugeMetricFamily(
        "fraudrisk_cases_labels_undelivered",
        "Resolutions whose labels are not in the labels table yet (the outbox retries them).",
        value=float(row.unstored),
    )
    age = (now - row.oldest).total_seconds() if row.oldest is not None else 0.0
    yield GaugeMetricFamily(
        "fraudrisk_cases_labels_undelivered_oldest_age_seconds",
        "Age of the oldest resolution whose labels are not in the labels table yet.",
        value=age,
    )


def _open_query(now: dt.datetime) -> sa.Select[Any]:
    return (
        sa.select(
            QUEUES.c.name,
            sa.func.count(CASES.c.id).label("open"),
            sa.func.count(CASES.c.id).filter(CASES.c.assignee_id.is_(None)).label("unassigned"),
            sa.func.count(CASES.c.id).filter(CASES.c.due_at < now).label("breached"),
            sa.func.min(CASES.c.opened_at).label("oldest"),
        )
        .select_from(QUEUES)
        .outerjoin(CASES, (CASES.c.queue_id == QUEUES.c.id) & CASES.c.status.in_(OPEN_STATUSES))
        .group_by(QUEUES.c.name)
    )


def _resolved_query() -> sa.Select[Any]:
    return (
        sa.select(
            QUEUES.c.name,
            CASES.c.routing_rule,
            CASES.c.disposition,
            CASES.c.opened_at,
            CASES.c.resolved_at,
        )
        .join(QUEUES, QUEUES.c.id == CASES.c.queue_id)
        .where(CASES.c.resolved_at.is_not(None))
    )


def _open_families(rows: Sequence[Any], now: dt.datetime) -> Iterator[GaugeMetricFamily]:
    families = {
        "open": GaugeMetricFamily("fraudrisk_cases_open", "Open cases.", labels=["queue"]),
        "unassigned": GaugeMetricFamily(
            "fraudrisk_cases_unassigned", "Open cases nobody holds.", labels=["queue"]
        ),
        "breached": GaugeMetricFamily(
            "fraudrisk_cases_sla_breached", "Open cases past their SLA due time.", labels=["queue"]
        ),
    }
    oldest = GaugeMetricFamily(
        "fraudrisk_cases_oldest_open_age_seconds", "Age of the oldest open case.", labels=["queue"]
    )
    for row in rows:
        for name, family in families.items():
            family.add_metric([row.name], float(getattr(row, name)))
        age = (now - row.oldest).total_seconds() if row.oldest is not None else 0.0
        oldest.add_metric([row.name], age)
    yield from families.values()
    yield oldest


def _resolved_families(rows: Sequence[Any]) -> Iterator[GaugeMetricFamily]:
    resolved = GaugeMetricFamily(
        "fraudrisk_cases_resolved", "Resolved cases.", labels=["queue", "disposition"]
    )
    seconds = GaugeMetricFamily(
        "fraudrisk_cases_time_to_resolve_median_seconds",
        "Median time to resolve.",
        labels=["queue"],
    )
    fp_rate = GaugeMetricFamily(
        "fraudrisk_cases_false_positive_rate",
        "Legitimate among cases resolved fraud or legitimate.",
        labels=["queue", "routing_rule"],
    )
    by_disposition: dict[tuple[str, str], int] = {}
    durations: dict[str, list[float]] = {}
    verdicts: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        key = (row.name, row.disposition)
        by_disposition[key] = by_disposition.get(key, 0) + 1
        durations.setdefault(row.name, []).append((row.resolved_at - row.opened_at).total_seconds())
        if row.disposition in (Disposition.LEGITIMATE, Disposition.CONFIRMED_FRAUD):
            is_fp = int(row.disposition == Disposition.LEGITIMATE)
            for rule_key in ((row.name, row.routing_rule), (row.name, "all")):
                verdicts.setdefault(rule_key, []).append(is_fp)
    for (queue, disposition), count in sorted(by_disposition.items()):
        resolved.add_metric([queue, disposition], float(count))
    for queue, values in sorted(durations.items()):
        seconds.add_metric([queue], sorted(values)[len(values) // 2])
    for (queue, rule), flags in sorted(verdicts.items()):
        fp_rate.add_metric([queue, rule], sum(flags) / len(flags))
    yield from (resolved, seconds, fp_rate)
