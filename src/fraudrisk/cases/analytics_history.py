"""The SQL of the historical analysis: two aggregate queries, grouped in the database.

:func:`volumes` (transactions and alerts) and :func:`case_figures` (cases opened, resolved,
dispositions, alerts of resolved cases, resolution-time quantiles) each read one window
``[start, end)`` (naive UTC) for one grouping and return their figures by raw group key (a
queue id, a rule name, a model version, a policy version or None, a day number since
1970). :mod:`fraudrisk.cases.analytics` names the keys, assembles the rows and documents
what every figure means.

Where a figure comes from:

* volumes — ``scores`` by ``scored_at`` (for queues, the ``case_alerts`` of the queue's cases
  by ``alerted_at``: a transaction that did not alert is in no queue);
* cases — ``cases`` by ``opened_at`` (opened) and ``resolved_at`` (resolved, dispositions,
  resolution times). A case belongs to its queue, to its model (the model version of the
  alert that opened it), to the day of the time counted, and to every policy version and
  rule of its alerts (``case_alerts`` joined to ``scores``, which hold the policy's facts).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fraudrisk.alerts.store import SCORES
from fraudrisk.cases.analytics_sql import (
    QUANTILES,
    days_since_epoch,
    fired_rules,
    quantile_ranks,
    quantiles,
    seconds_between,
)
from fraudrisk.cases.lifecycle import Disposition
from fraudrisk.cases.tables import CASE_ALERTS, CASES, QUEUES
from fraudrisk.vocab import ALERT_DECISIONS


@dataclass(frozen=True)
class Window:
    """A half-open window of naive-UTC times and the grouping read over it."""

    start: dt.datetime
    end: dt.datetime
    group_by: str

    def holds(self, column: Any) -> Any:
        """``start <= column < end`` (an index on the column serves it)."""
        return sa.and_(column >= self.start, column < self.end)


@dataclass(frozen=True)
class CaseFigures:
    """The case figures of one group (counts; seconds for the resolution times)."""

    opened: int
    resolved: int
    confirmed_fraud: int
    resolved_alerts: int
    legitimate_alerts: int
    median_seconds: float | None
    p90_seconds: float | None


#: The columns of :func:`_case_keys`: a group key, the case and its alerts in the group, which
#: figures the row counts in, and the case's own facts.
_CASE_KEY_COLUMNS = ("key", "case_id", "weight", "role", "opened_at", "resolved_at", "disposition")


def _case_keys(dialect: str, window: Window) -> sa.Subquery:
    """The window's cases with their groups, one row per (group, case): :data:`_CASE_KEY_COLUMNS`.

    ``weight`` is how many of the case's alerts are in the group; ``role`` says which
    figures the row counts in (``both``; for days, ``opened`` or ``resolved``: a case opened
    and resolved on two days is in each once). A case's queue and model are its own (the
    model of the alert that opened it; queues keyed by id); its policy versions and rules
    are those of its alerts' scores.
    """
    either = sa.or_(window.holds(CASES.c.opened_at), window.holds(CASES.c.resolved_at))
    facts = (CASES.c.opened_at, CASES.c.resolved_at, CASES.c.disposition)
    if window.group_by in ("queue", "model"):
        key = CASES.c.queue_id if window.group_by == "queue" else CASES.c.model_version
        own = (key, CASES.c.id, CASES.c.alert_count, sa.literal("both"))
        return _named(sa.select(*own, *facts).where(either)).subquery("case_keys")
    if window.group_by == "day":
        days = [
            _named(
                sa.select(
                    days_since_epoch(at), CASES.c.id, CASES.c.alert_count, sa.literal(role), *facts
                ).where(window.holds(at))
            )
            for role, at in (("opened", CASES.c.opened_at), ("resolved", CASES.c.resolved_at))
        ]
        return sa.union_all(*days).subquery("case_keys")
    joined = CASES.join(CASE_ALERTS, CASE_ALERTS.c.case_id == CASES.c.id).join(
        SCORES, SCORES.c.transaction_id == CASE_ALERTS.c.transaction_id
    )
    key = SCORES.c.policy_version
    if window.group_by == "rule":
        rule = fired_rules(dialect)
        joined, key = joined.join(rule, sa.true()), rule.c.value
    query = (
        sa.select(key, CASES.c.id, sa.func.count(), sa.literal("both"), *facts)
        .select_from(joined)
        .where(either)
        .group_by(CASES.c.id, key, *facts)
    )
    return _named(query).subquery("case_keys")


def _named(query: sa.Select[Any]) -> sa.Select[Any]:
    """The select's columns named :data:`_CASE_KEY_COLUMNS`."""
    labelled = [c.label(n) for c, n in zip(query.selected_columns, _CASE_KEY_COLUMNS, strict=True)]
    return query.with_only_columns(*labelled)


def queue_names(connection: Connection) -> dict[int, str]:
    """Every queue's name by id."""
    return {int(i): str(n) for i, n in connection.execute(sa.select(QUEUES.c.id, QUEUES.c.name))}


def volumes(connection: Connection, window: Window) -> dict[Any, tuple[int | None, int]]:
    """Transactions scored (None for queues) and alerts, by group."""
    if window.group_by == "queue":
        return _queue_alerts(connection, window)
    is_alert = sa.case((SCORES.c.decision.in_(sorted(ALERT_DECISIONS)), 1), else_=0)
    from_: Any = SCORES
    where = [window.holds(SCORES.c.scored_at)]
    if window.group_by == "rule":
        rule = fired_rules(connection.dialect.name)
        from_, key = SCORES.join(rule, sa.true()), rule.c.value
        where.append(SCORES.c.policy_rules != "[]")  # most scores fire no rule: skip parsing
    else:
        key = {
            "model": SCORES.c.model_version,
            "policy_version": SCORES.c.policy_version,
            "day": days_since_epoch(SCORES.c.scored_at),
        }[window.group_by]
    query = (
        sa.select(key, sa.func.count(), sa.func.sum(is_alert))
        .select_from(from_)
        .where(*where)
        .group_by(key)
    )
    return {k: (int(n), int(alerts or 0)) for k, n, alerts in connection.execute(query)}


def _queue_alerts(connection: Connection, window: Window) -> dict[Any, tuple[int | None, int]]:
    query = (
        sa.select(CASES.c.queue_id, sa.func.count())
        .select_from(CASE_ALERTS.join(CASES, CASES.c.id == CASE_ALERTS.c.case_id))
        .where(window.holds(CASE_ALERTS.c.alerted_at))
        .group_by(CASES.c.queue_id)
    )
    return {name: (None, int(n)) for name, n in connection.execute(query)}


def case_figures(connection: Connection, window: Window) -> dict[Any, CaseFigures]:
    """Cases opened and resolved in the window, and the resolved ones' figures, by group.

    One aggregate over the window's (group, case) rows; on PostgreSQL the resolution
    quantiles are ``percentile_cont`` in it, on SQLite (which has none) window functions
    rank the resolution times in a second query (:func:`~.analytics_sql.quantile_ranks`).
    """
    keys = _case_keys(connection.dialect.name, window)
    is_opened = sa.and_(keys.c.role != "resolved", window.holds(keys.c.opened_at))
    is_resolved = sa.and_(keys.c.role != "opened", window.holds(keys.c.resolved_at))
    fraud = keys.c.disposition == Disposition.CONFIRMED_FRAUD.value
    legitimate = keys.c.disposition == Disposition.LEGITIMATE.value
    took = seconds_between(keys.c.opened_at, keys.c.resolved_at)
    figures: list[Any] = [
        sa.func.count().filter(is_opened),
        sa.func.count().filter(is_resolved),
        sa.func.count().filter(sa.and_(is_resolved, fraud)),
        sa.func.sum(keys.c.weight).filter(is_resolved),
        sa.func.sum(keys.c.weight).filter(sa.and_(is_resolved, legitimate)),
    ]
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        resolved_took = sa.case((is_resolved, took))  # NULL otherwise: percentile_cont skips it
        figures += [sa.func.percentile_cont(q).within_group(resolved_took) for q in QUANTILES]
    query = sa.select(keys.c.key, *figures).group_by(keys.c.key)
    rows = connection.execute(query).all()
    if postgres:
        return {row[0]: _figures(row, row[6:]) for row in rows}
    values = sa.select(keys.c.key, took.label("value")).where(is_resolved)
    ranked = quantiles(connection.execute(quantile_ranks(values.subquery("resolved_times"))))
    return {row[0]: _figures(row, ranked.get(row[0])) for row in rows}


def _figures(row: Any, times: Sequence[float | None] | None) -> CaseFigures:
    opened, resolved, frauds, alerts, legitimate = (int(v or 0) for v in row[1:6])
    median, p90 = (None, None) if not times else (times[0], times[1])
    return CaseFigures(
        opened=opened,
        resolved=resolved,
        confirmed_fraud=frauds,
        resolved_alerts=alerts,
        legitimate_alerts=legitimate,
        median_seconds=None if median is None else float(median),
        p90_seconds=None if p90 is None else float(p90),
    )
