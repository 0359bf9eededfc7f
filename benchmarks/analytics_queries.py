"""Dashboard analytics: every page's query on 100,000 cases and ~1M scores in PostgreSQL.

A throw-away PostgreSQL cluster on loopback (Debian's binaries, stopped at the end) is filled
in SQL (``generate_series``, not timed): ``--scores`` scores over 90 days (12 % review, 3 %
decline, two model versions and variants, three policy versions and none, a rule fired on
10 %), every alert in one of ``--cases`` cases in four queues (80 % resolved up to three days
after opening: 30 % confirmed fraud, 60 % legitimate, 10 % inconclusive).

Each page's call (:func:`fraudrisk.cases.analytics.live_window` / ``history``) is timed
warm, p50 and p95 over repeated calls, in the same run:

* with the tables' own indexes only, and again after creating the suggested ones
  (:data:`SUGGESTED_INDEXES`, then ``ANALYZE``);
* beside a **baseline**: load the window's rows (``pandas.read_sql``) and aggregate them in
  pandas — what a page without SQL aggregation would do (fewer calls: it takes seconds).
  Its counts are checked against ours.

Target (issue #15): server time p95 ≤ 100 ms for every page.

Usage:
    python benchmarks/analytics_queries.py
    python benchmarks/analytics_queries.py --scores 200000 --cases 20000 --repeats 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from fraudrisk.alerts.store import AlertStore
from fraudrisk.cases.analytics import GroupBy, history, live_window
from fraudrisk.io import database
from fraudrisk.io.local_postgres import local_postgres

TARGET_MS = 100.0
END = dt.datetime(2026, 12, 1)
DAYS = 90
SUGGESTED_INDEXES = (
    "CREATE INDEX ix_scores_scored_at ON scores (scored_at)"
    " INCLUDE (decision, variant, policy_version, model_version)",
    "CREATE INDEX ix_cases_resolved_at ON cases (resolved_at)",
    "CREATE INDEX ix_cases_opened_at ON cases (opened_at)",
    "CREATE INDEX ix_case_alerts_alerted_at ON case_alerts (alerted_at)",
    # the few scores a rule fired on, for the per-rule volumes (the predicate is the query's)
    "CREATE INDEX ix_scores_fired_rules ON scores (scored_at) INCLUDE (decision, policy_rules)"
    " WHERE policy_rules <> '[]'",
    # a case alert's policy facts without visiting the table (per-policy and per-rule cases)
    "CREATE INDEX ix_scores_policy_facts ON scores (transaction_id)"
    " INCLUDE (policy_version, policy_rules)",
)

FILL_SCORES = """
INSERT INTO scores (transaction_id, customer_id, terminal_id, tx_datetime, tx_amount,
    risk_score, decision, reason_codes, model_version, variant, fallback, scored_at,
    policy_version, route, priority_factor, policy_rules)
SELECT i, (random() * 50000)::bigint, (random() * 10000)::bigint, ts - interval '2 seconds',
    round((random() * 500)::numeric, 2), r,
    CASE WHEN r < 0.12 THEN 'review' WHEN r < 0.15 THEN 'decline' ELSE 'approve' END,
    '[]', CASE WHEN i % 3 = 0 THEN '8' ELSE '7' END,
    CASE WHEN i % 10 = 0 THEN 'canary' ELSE 'champion' END, false, ts,
    CASE WHEN i % 7 = 0 THEN NULL ELSE 1 + (i * 3 / :n) END, NULL, 1.0,
    CASE WHEN i % 10 = 1 THEN '["night-large"]'
         WHEN i % 20 = 2 THEN '["night-large", "new-terminal"]' ELSE '[]' END
FROM (SELECT i, random() AS r,
             :start + (i * (:seconds / :n)) * interval '1 second' AS ts
      FROM generate_series(1, :n) AS i) AS g
"""
FILL_CASE_ALERTS = """
INSERT INTO case_alerts (transaction_id, case_id, customer_id, terminal_id, tx_datetime,
    tx_amount, risk_score, decision, reason_codes, model_version, variant, alerted_at)
SELECT transaction_id, 1 + (k * :cases / count(*) OVER ()), customer_id, terminal_id,
    tx_datetime, tx_amount, risk_score, decision, reason_codes, model_version, variant, scored_at
FROM (SELECT s.*, row_number() OVER (ORDER BY transaction_id) - 1 AS k
      FROM scores AS s WHERE decision <> 'approve') AS a
"""
FILL_CASES = """
INSERT INTO cases (id, customer_id, queue_id, status, disposition, priority, amount_total,
    max_risk, alert_count, decision, model_version, variant, routing_rule, opened_at,
    last_alert_at, due_at, resolved_at, updated_at, version)
SELECT case_id, customer_id, queue_id, CASE WHEN resolved THEN 'resolved' ELSE 'new' END,
    CASE WHEN NOT resolved THEN NULL WHEN d < 0.3 THEN 'confirmed-fraud'
         WHEN d < 0.9 THEN 'legitimate' ELSE 'inconclusive' END,
    amount, amount, risk, n, 'review', model_version, 'champion', 'bench', opened,
    opened, opened, CASE WHEN resolved THEN opened + took * interval '1 second' END, opened, 1
FROM (SELECT case_id, min(customer_id) AS customer_id, 1 + case_id % 4 AS queue_id,
             random() < 0.8 AS resolved, random() AS d, random() * 259200 AS took,
             sum(tx_amount) AS amount, max(risk_score) AS risk, count(*) AS n,
             min(model_version) AS model_version,
             min(alerted_at) + interval '1 minute' AS opened
      FROM case_alerts GROUP BY case_id) AS c
"""


@dataclass(frozen=True)
class Page:
    """One page's call: a name and the call on an engine."""

    name: str
    call: Callable[[sa.Engine], Any]


def pages() -> list[Page]:
    """The live monitor's windows and the historical analysis by every grouping."""
    month, quarter = (END - dt.timedelta(days=30)).date(), (END - dt.timedelta(days=DAYS)).date()
    last = (END - dt.timedelta(days=1)).date()
    made = [
        Page("live: last hour, 10 s buckets", lambda e: live_window(e, hour_ago(), END, 10)),
        Page("live: last 24 h, 5 min buckets", lambda e: live_window(e, day_ago(), END, 300)),
    ]
    for grouping in GroupBy:
        made.append(
            Page(f"history by {grouping}: 30 days", _history(month, last, grouping)),
        )
    made.append(Page("history by day: 90 days", _history(quarter, last, GroupBy.DAY)))
    made.append(Page("history by rule: 90 days", _history(quarter, last, GroupBy.RULE)))
    return made


def hour_ago() -> dt.datetime:
    return END - dt.timedelta(hours=1)


def day_ago() -> dt.datetime:
    return END - dt.timedelta(days=1)


def _history(start: dt.date, end: dt.date, grouping: GroupBy) -> Callable[[sa.Engine], Any]:
    return lambda engine: history(engine, start, end, grouping)


def fill(engine: sa.Engine, scores: int, cases: int, console: Console) -> None:
    """Queues, scores, case alerts and cases, generated in the database."""
    started = time.perf_counter()
    now = END
    queues = [
        {"name": n, "description": n, "sla_minutes": 240, "created_at": now}
        for n in ("general", "high-value", "card-testing", "account-takeover")
    ]
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM queues"))
        connection.execute(
            sa.text(
                "INSERT INTO queues (id, name, description, sla_minutes, created_at)"
                " VALUES (:id, :name, :description, :sla_minutes, :created_at)"
            ),
            [{"id": i + 1, **q} for i, q in enumerate(queues)],
        )
        start = END - dt.timedelta(days=DAYS)
        connection.execute(
            sa.text(FILL_SCORES), {"n": scores, "start": start, "seconds": DAYS * 86_400.0}
        )
        # case_alerts first (the cases are its groups): foreign keys checked by no trigger
        # for this transaction (the scratch cluster's user is its superuser)
        connection.execute(sa.text("SET LOCAL session_replication_role = replica"))
        connection.execute(sa.text(FILL_CASE_ALERTS), {"cases": cases})
        connection.execute(sa.text(FILL_CASES))
    analyze(engine)
    with engine.connect() as connection:
        counts = {
            t: connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("scores", "case_alerts", "cases")
        }
    took = time.perf_counter() - started
    console.print(", ".join(f"{n:,} {t}" for t, n in counts.items()) + f" (filled in {took:.0f} s)")


def analyze(engine: sa.Engine) -> None:
    """Fresh planner statistics (and visibility maps, for index-only scans)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))


def timings(call: Callable[[], Any], repeats: int, budget_s: float) -> list[float]:
    """Milliseconds per call: two warm-ups, then ``repeats`` calls or until the budget."""
    for _ in range(2):
        call()
    out: list[float] = []
    deadline = time.monotonic() + budget_s
    while len(out) < repeats and (len(out) < 3 or time.monotonic() < deadline):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of the values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


# --- the baseline: load the rows, aggregate in pandas ----------------------------------------


def baseline_live(engine: sa.Engine) -> pd.DataFrame:
    """The last hour's rows loaded, then grouped by 10 s bucket, variant and decision."""
    frame = pd.read_sql(
        sa.text(
            "SELECT scored_at, variant, policy_version, decision FROM scores"
            " WHERE scored_at >= :since AND scored_at < :until"
        ),
        engine,
        params={"since": hour_ago(), "until": END},
    )
    frame["bucket"] = frame["scored_at"].dt.floor("10s")
    by_variant = frame.groupby(["bucket", "variant", "decision"]).size()
    by_policy = frame.groupby(["bucket", "policy_version", "decision"], dropna=False).size()
    return pd.concat([by_variant, by_policy]).to_frame("n")


def baseline_history_by_model(engine: sa.Engine) -> pd.DataFrame:
    """The 30 days' scores and cases loaded, then the figures by model (as ours)."""
    start, stop = END - dt.timedelta(days=30), END
    params = {"start": start, "stop": stop}
    scores = pd.read_sql(
        sa.text(
            "SELECT model_version, decision FROM scores"
            " WHERE scored_at >= :start AND scored_at < :stop"
        ),
        engine,
        params=params,
    )
    cases = pd.read_sql(
        sa.text(
            "SELECT id, model_version, alert_count, opened_at, resolved_at, disposition"
            " FROM cases WHERE (opened_at >= :start AND opened_at < :stop)"
            " OR (resolved_at >= :start AND resolved_at < :stop)"
        ),
        engine,
        params=params,
    )
    volume = scores.assign(alert=scores["decision"] != "approve").groupby("model_version")
    figures = volume.agg(transactions=("alert", "size"), alerts=("alert", "sum"))
    opened = cases[(cases.opened_at >= start) & (cases.opened_at < stop)]
    figures["cases_opened"] = opened.groupby("model_version").size()
    done = cases[(cases.resolved_at >= start) & (cases.resolved_at < stop)].copy()
    done["minutes"] = (done.resolved_at - done.opened_at).dt.total_seconds() / 60
    done["legitimate"] = done.alert_count.where(done.disposition == "legitimate", 0)
    by_model = done.groupby("model_version")
    figures["cases_resolved"] = by_model.size()
    figures["legitimate"] = by_model["legitimate"].sum()
    figures["median"] = by_model["minutes"].median()
    figures["p90"] = by_model["minutes"].quantile(0.9)
    return figures


def check_baseline(engine: sa.Engine, figures: pd.DataFrame) -> None:
    """The baseline's counts equal ours (both compute the same figures)."""
    ours = {r.group: r for r in history(engine, *_month(), GroupBy.MODEL)}
    for model, row in figures.iterrows():
        mine = ours[str(model)]
        assert (mine.transactions, mine.alerts) == (row.transactions, row.alerts), model
        assert (mine.cases_opened, mine.cases_resolved) == (row.cases_opened, row.cases_resolved)
        assert mine.legitimate_alerts == row.legitimate, model
        assert abs((mine.resolution_median_minutes or 0) - row["median"]) < 1e-6, model
        assert abs((mine.resolution_p90_minutes or 0) - row["p90"]) < 1e-6, model


def _month() -> tuple[dt.date, dt.date]:
    return (END - dt.timedelta(days=30)).date(), (END - dt.timedelta(days=1)).date()


# --- the run ---------------------------------------------------------------------------------


def measure(engine: sa.Engine, repeats: int, budget_s: float) -> dict[str, list[float]]:
    """Each page's timings, by name."""
    return {p.name: timings(lambda p=p: p.call(engine), repeats, budget_s) for p in pages()}


def main() -> None:
    """Fill the database, time every page twice (without and with the indexes), print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=int, default=1_000_000, help="Scores to generate.")
    parser.add_argument("--cases", type=int, default=100_000, help="Cases to generate.")
    parser.add_argument("--repeats", type=int, default=30, help="Timed calls per page.")
    parser.add_argument("--budget", type=float, default=10.0, help="Seconds per page at most.")
    args = parser.parse_args()
    console = Console(width=160)
    load_before = os.getloadavg()[0]
    with local_postgres(("analytics",)) as server:
        url = f"postgresql+psycopg://{server.split('://', 1)[1]}/analytics"
        engine = database.create_engine(url)
        database.upgrade(engine)
        AlertStore(url).close()
        fill(engine, args.scores, args.cases, console)
        plain = measure(engine, args.repeats, args.budget)
        with engine.begin() as connection:
            for statement in SUGGESTED_INDEXES:
                connection.execute(sa.text(statement))
        analyze(engine)
        indexed = measure(engine, args.repeats, args.budget)
        check_baseline(engine, baseline_history_by_model(engine))
        baselines = {
            "live: last hour, 10 s buckets": timings(lambda: baseline_live(engine), 5, 30),
            "history by model: 30 days": timings(lambda: baseline_history_by_model(engine), 5, 60),
        }
        engine.dispose()
    print_table(console, args, plain, indexed, baselines, (load_before, os.getloadavg()[0]))


def print_table(
    console: Console,
    args: argparse.Namespace,
    plain: dict[str, list[float]],
    indexed: dict[str, list[float]],
    baselines: dict[str, list[float]],
    load: tuple[float, float],
) -> None:
    """The table, with the date, machine and load."""
    console.print(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}) · {platform.python_implementation()} "
        f"{platform.python_version()} · load {load[0]:.2f} before, {load[1]:.2f} after"
    )
    table = Table(
        title=f"dashboard queries, {args.scores:,} scores / {args.cases:,} cases, PostgreSQL "
        f"(target p95 ≤ {TARGET_MS:.0f} ms)"
    )
    for column in (
        "page",
        "table indexes p50 / p95 ms",
        "+ suggested p50 / p95 ms",
        "baseline (pandas) p50 ms",
        "calls",
    ):
        table.add_column(column, justify="right" if column != "page" else "left")
    for name, times in indexed.items():
        base = baselines.get(name)
        table.add_row(
            name,
            f"{statistics.median(plain[name]):.1f} / {percentile(plain[name], 0.95):.1f}",
            f"{statistics.median(times):.1f} / {percentile(times, 0.95):.1f}",
            f"{statistics.median(base):,.0f}" if base else "—",
            f"{len(plain[name])} / {len(times)}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
