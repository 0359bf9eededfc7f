"""The dashboard's figures: the live monitor and the historical analysis, aggregated in SQL.

The query layer of the dashboard's "Live monitor" and "Historical analysis" pages (issue #15),
over the alert store's ``scores`` and the case tables, on SQLite and PostgreSQL alike (SQL
Core; time buckets are integer divisions of epoch seconds, :mod:`.analytics_sql`). Every
figure is a GROUP BY in the database; only the groups come back.

- :func:`live_window` — per time bucket of ``scored_at``: transactions, decisions, alert
  rate, throughput, overall and by model variant and by policy version.
- :func:`history` — over a range of days: volumes, alerts, cases opened and resolved, fraud
  and false-positive rates, resolution times, per queue, rule, model, policy version or day.
- :func:`to_csv` — either kind of rows as RFC 4180 CSV, columns in the rows' field order.

**Latency is not in the database**: the store keeps when a transaction happened
(``tx_datetime``, the source's event time — days old in a replay) and when its score was
written (``scored_at``), not how long scoring took. The latency of the live monitor comes from
the Prometheus histograms named in :data:`LATENCY_METRICS`.

Indexes that serve these queries (not in the table definitions; each measured with and
without by ``benchmarks/analytics_queries.py``): ``scores (scored_at)`` — on PostgreSQL
``INCLUDE (decision, variant, policy_version, model_version)`` for index-only scans —,
``scores (scored_at) INCLUDE (decision, policy_rules) WHERE policy_rules <> '[]'`` for the
per-rule volumes, ``cases (opened_at)``, ``cases (resolved_at)`` and
``case_alerts (alerted_at)``. The per-policy-version and per-rule case figures join every
case alert of the window to its score (``case_alerts`` does not carry the policy's facts,
and ``cases.policy_version`` is never written): they cost one score lookup per alert.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from enum import StrEnum
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fraudrisk.alerts.store import SCORES
from fraudrisk.cases import analytics_history as sql
from fraudrisk.cases.analytics_sql import bucket_of, reading
from fraudrisk.vocab import APPROVE, DECLINE, REVIEW

#: Where the live monitor's latency is (Prometheus histograms, seconds), by what it times.
LATENCY_METRICS: Final = {
    "scoring (KServe scorer, per request, by model and variant)": (
        "fraudrisk_request_latency_seconds"
    ),
    "stream scorer (score, sink and commit of a batch)": "fraudrisk_stream_batch_seconds",
    "Transaction API (per HTTP request, by route)": "fraudrisk_api_request_latency_seconds",
}
#: At most this many buckets in one live window (a page never needs more).
MAX_BUCKETS: Final = 10_000
#: The group of scores no policy version decided (the model's thresholds or the fallback).
NO_POLICY: Final = "none"
_EPOCH = dt.datetime(1970, 1, 1)


class GroupBy(StrEnum):
    """What the historical analysis is grouped by."""

    QUEUE = "queue"
    RULE = "rule"
    MODEL = "model"
    POLICY_VERSION = "policy_version"
    DAY = "day"


@dataclass(frozen=True)
class LiveRow:
    """One time bucket of the live monitor, overall or for one variant or policy version.

    ``dimension`` is ``all`` (``value`` ``all``), ``variant`` (the model variant that
    decided: champion, canary, challenger…) or ``policy_version`` (``none``: no policy).
    Rates are over the part of the bucket inside the window asked for.
    """

    bucket_start: dt.datetime
    dimension: str
    value: str
    transactions: int
    approve: int
    review: int
    decline: int
    alert_rate: float
    """(review + decline) / transactions."""
    transactions_per_second: float
    decisions_per_minute: float


@dataclass(frozen=True)
class HistoryRow:
    """The figures of one group over a range of days.

    Transactions and alerts are counted by when they were scored (``scored_at``; for a
    queue, the alerts of its cases by ``alerted_at``, and no transaction count); cases by when
    they were opened (``cases_opened``) or resolved (every other case figure). A case belongs
    to its queue, to its model (``cases.model_version``: that of the alert that opened it),
    to the day of the time counted, and to every policy version and rule of its alerts (with
    those of its alerts: ``resolved_alerts`` counts the alerts in the group); a transaction
    counts under every rule that fired on it.
    """

    group_by: str
    group: str
    transactions: int | None
    alerts: int
    alert_rate: float | None
    """alerts / transactions (None for queues, or without transactions)."""
    cases_opened: int
    cases_resolved: int
    confirmed_fraud: int
    fraud_rate: float | None
    """Cases resolved as confirmed fraud / cases resolved (inconclusive ones included)."""
    resolved_alerts: int
    legitimate_alerts: int
    false_positive_rate: float | None
    """Alerts of cases resolved legitimate / alerts of resolved cases."""
    resolution_median_minutes: float | None
    resolution_p90_minutes: float | None


def _ratio(part: int, whole: int | None) -> float | None:
    return part / whole if whole else None


def live_window(
    engine: Engine, since: dt.datetime, until: dt.datetime, bucket_seconds: int = 60
) -> list[LiveRow]:
    """The live monitor's buckets of ``[since, until)`` (naive UTC, by ``scored_at``).

    One GROUP BY (bucket, variant, policy version, decision) in the database; the overall,
    per-variant and per-policy rows are summed from its few groups. Buckets start at whole
    multiples of ``bucket_seconds`` since 1970; a bucket without transactions is absent.
    Latency is not stored per transaction: see :data:`LATENCY_METRICS`.

    Returns:
        Rows ordered by bucket, then dimension (all, variant, policy_version), then value.

    Raises:
        ValueError: If the window is empty or reversed, the bucket not a positive whole
            number of seconds, or the window more than :data:`MAX_BUCKETS` buckets long.
    """
    _check_live(since, until, bucket_seconds)
    bucket = bucket_of(SCORES.c.scored_at, bucket_seconds).label("bucket")
    columns = (bucket, SCORES.c.variant, SCORES.c.policy_version, SCORES.c.decision)
    query = (
        sa.select(*columns, sa.func.count())
        .where(SCORES.c.scored_at >= since, SCORES.c.scored_at < until)
        .group_by(*columns)
    )
    counts: dict[tuple[int, str, str], Counter[str]] = defaultdict(Counter)
    with reading(engine) as connection:
        for start, variant, policy, decision, n in connection.execute(query):
            policy_name = NO_POLICY if policy is None else str(policy)
            for key in (("all", "all"), ("variant", variant), ("policy_version", policy_name)):
                counts[(int(start), *key)][decision] += int(n)
    order = {"all": 0, "variant": 1, "policy_version": 2}
    keys = sorted(counts, key=lambda k: (k[0], order[k[1]], k[2]))
    return [_live_row(k, counts[k], since, until, bucket_seconds) for k in keys]


def _check_live(since: dt.datetime, until: dt.datetime, bucket_seconds: int) -> None:
    if not isinstance(bucket_seconds, int) or bucket_seconds < 1:
        raise ValueError(f"bucket_seconds must be a positive whole number, not {bucket_seconds!r}")
    if until <= since:
        raise ValueError(f"the live window is empty or reversed: since {since} ≥ until {until}")
    buckets = (until - since).total_seconds() / bucket_seconds
    if buckets > MAX_BUCKETS:
        raise ValueError(f"{buckets:,.0f} buckets asked for, at most {MAX_BUCKETS:,}")


def _live_row(
    key: tuple[int, str, str],
    decisions: Counter[str],
    since: dt.datetime,
    until: dt.datetime,
    bucket_seconds: int,
) -> LiveRow:
    start = _EPOCH + dt.timedelta(seconds=key[0])
    end = start + dt.timedelta(seconds=bucket_seconds)
    covered = (min(end, until) - max(start, since)).total_seconds()
    total = sum(decisions.values())
    return LiveRow(
        bucket_start=start,
        dimension=key[1],
        value=key[2],
        transactions=total,
        approve=decisions[APPROVE],
        review=decisions[REVIEW],
        decline=decisions[DECLINE],
        alert_rate=(decisions[REVIEW] + decisions[DECLINE]) / total,
        transactions_per_second=total / covered,
        decisions_per_minute=total * 60 / covered,
    )


def history(
    engine: Engine, start: dt.date, end: dt.date, group_by: GroupBy | str
) -> list[HistoryRow]:
    """The historical analysis of the days ``start`` to ``end`` (both included, UTC).

    Two aggregate queries (volumes; the cases' figures), each grouped in the database
    (:mod:`.analytics_history`); see :class:`HistoryRow` for what each figure counts.

    Returns:
        One row per group seen in any figure, ordered by group (days in date order,
        policy versions by number, ``none`` last).

    Raises:
        ValueError: If ``end`` is before ``start`` or ``group_by`` is not a :class:`GroupBy`.
    """
    grouping, window = _history_window(start, end, group_by)
    with reading(engine) as connection:
        volumes = sql.volumes(connection, window)
        cases = sql.case_figures(connection, window)
        if grouping is GroupBy.QUEUE:  # keyed by id until here
            names = sql.queue_names(connection)
            volumes = {names[k]: v for k, v in volumes.items()}
            cases = {names[k]: v for k, v in cases.items()}
    keys = sorted(set(volumes) | set(cases), key=_group_order)
    empty_volume: tuple[int | None, int] = (None if grouping is GroupBy.QUEUE else 0, 0)
    no_cases = sql.CaseFigures(0, 0, 0, 0, 0, None, None)
    return [
        _history_row(grouping, key, volumes.get(key, empty_volume), cases.get(key, no_cases))
        for key in keys
    ]


def _history_window(
    start: dt.date, end: dt.date, group_by: GroupBy | str
) -> tuple[GroupBy, sql.Window]:
    """The grouping, and the days as a half-open window of times (checked)."""
    if end < start:
        raise ValueError(f"the date range is reversed: start {start} is after end {end}")
    try:
        grouping = GroupBy(group_by)
    except ValueError:
        choices = ", ".join(g.value for g in GroupBy)
        raise ValueError(f"cannot group by {group_by!r}: one of {choices}") from None
    begin = dt.datetime(start.year, start.month, start.day)
    stop = dt.datetime(end.year, end.month, end.day) + dt.timedelta(days=1)
    return grouping, sql.Window(begin, stop, grouping.value)


def _group_order(key: Any) -> tuple[int, Any]:
    """Numbers (days, versions, numeric model versions) by value, then names, then None."""
    if key is None:
        return (2, 0)
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        return (0, int(key))
    return (1, str(key))


def _group_name(grouping: GroupBy, key: Any) -> str:
    if grouping is GroupBy.DAY:
        return (_EPOCH + dt.timedelta(days=int(key))).date().isoformat()
    return NO_POLICY if key is None else str(key)


def _history_row(
    grouping: GroupBy, key: Any, volume: tuple[int | None, int], cases: sql.CaseFigures
) -> HistoryRow:
    transactions, alerts = volume
    median, p90 = cases.median_seconds, cases.p90_seconds
    return HistoryRow(
        group_by=grouping.value,
        group=_group_name(grouping, key),
        transactions=transactions,
        alerts=alerts,
        alert_rate=_ratio(alerts, transactions),
        cases_opened=cases.opened,
        cases_resolved=cases.resolved,
        confirmed_fraud=cases.confirmed_fraud,
        fraud_rate=_ratio(cases.confirmed_fraud, cases.resolved),
        resolved_alerts=cases.resolved_alerts,
        legitimate_alerts=cases.legitimate_alerts,
        false_positive_rate=_ratio(cases.legitimate_alerts, cases.resolved_alerts),
        resolution_median_minutes=None if median is None else median / 60,
        resolution_p90_minutes=None if p90 is None else p90 / 60,
    )


def to_csv(
    rows: Sequence[LiveRow] | Sequence[HistoryRow],
    row_type: type[LiveRow] | type[HistoryRow] | None = None,
) -> str:
    """The rows as CSV (RFC 4180: CRLF line ends, quoted as needed), with a header line.

    Columns are the fields of the row type in their declared order; None is an empty
    field, times are ISO 8601. ``row_type`` gives the header of an empty list (without
    it, an empty list is an empty string).

    Raises:
        ValueError: If the rows are not all of one type.
    """
    kind = row_type or (type(rows[0]) if rows else None)
    if kind is None:
        return ""
    if any(type(row) is not kind for row in rows):
        raise ValueError(f"every row must be a {kind.__name__}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([f.name for f in fields(kind)])
    writer.writerows([_csv_value(v) for v in astuple(row)] for row in rows)
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value
