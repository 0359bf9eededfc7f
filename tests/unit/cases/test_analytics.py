"""The dashboard's analytics on SQLite, every figure against a brute-force count in Python.

A random but seeded world (scores over five days, cases of their alerts in three queues,
some resolved with each disposition, some still open, some alerts in no case) is written
straight into the tables; the expected figures are computed from the same Python objects by
loops that share nothing with the SQL (quantiles by numpy). The PostgreSQL test
(``tests/integration/cases/test_analytics_postgres.py``) checks the same world there.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from fraudrisk.alerts.store import SCORES, AlertStore
from fraudrisk.cases.analytics import (
    NO_POLICY,
    GroupBy,
    HistoryRow,
    LiveRow,
    history,
    live_window,
    to_csv,
)
from fraudrisk.cases.tables import CASE_ALERTS, CASES, QUEUES
from fraudrisk.io.database import open_database

FIRST_DAY = dt.datetime(2026, 3, 1)
DAYS = 5
RULES = ("night-large", "new-terminal", 'velocity, "burst"')  # a name CSV must quote
QUEUE_NAMES = ("general", "high-value", 'odd, "quoted" queue')
DISPOSITIONS = ("confirmed-fraud", "legitimate", "inconclusive")
_EPOCH = dt.datetime(1970, 1, 1)


# --- the world ------------------------------------------------------------------------------


@dataclass
class World:
    """What was written, as Python objects (the brute force reads these, never the database)."""

    scores: list[dict[str, Any]]
    cases: list[dict[str, Any]]
    case_alerts: list[dict[str, Any]]
    queue_names: dict[int, str]


def _score(rng: random.Random, tx_id: int) -> dict[str, Any]:
    scored_at = FIRST_DAY + dt.timedelta(seconds=rng.uniform(0, DAYS * 86_400))
    scored_at = scored_at.replace(microsecond=rng.randrange(1_000_000))
    fired = [r for r in RULES if rng.random() < 0.25]
    return {
        "transaction_id": tx_id,
        "customer_id": rng.randrange(40),
        "terminal_id": rng.randrange(30),
        "tx_datetime": scored_at - dt.timedelta(seconds=rng.uniform(0, 600)),
        "tx_amount": round(rng.uniform(1, 900), 2),
        "risk_score": rng.random(),
        "decision": rng.choices(("approve", "review", "decline"), (6, 3, 1))[0],
        "reason_codes": "[]",
        "model_version": rng.choice(("7", "8", "10")),
        "variant": rng.choice(("champion", "canary")),
        "fallback": False,
        "scored_at": scored_at,
        "policy_version": rng.choice((None, 1, 2, 10)),
        "route": None,
        "priority_factor": 1.0,
        "policy_rules": json.dumps(fired) if fired or rng.random() < 0.5 else None,
    }


def _case(rng: random.Random, case_id: int, alerts: list[dict[str, Any]], queue: int) -> Any:
    opened = min(a["scored_at"] for a in alerts) + dt.timedelta(seconds=rng.uniform(1, 300))
    is_resolved = rng.random() < 0.7
    resolved = opened + dt.timedelta(minutes=rng.uniform(1, 3 * 1440)) if is_resolved else None
    return {
        "id": case_id,
        "customer_id": alerts[0]["customer_id"],
        "queue_id": queue,
        "status": "resolved" if is_resolved else rng.choice(("new", "assigned", "escalated")),
        "disposition": rng.choice(DISPOSITIONS) if is_resolved else None,
        "assignee_id": None,
        "priority": 1.0,
        "amount_total": 1.0,
        "max_risk": 0.5,
        "alert_count": len(alerts),
        "decision": "review",
        "model_version": alerts[0]["model_version"],
        "variant": alerts[0]["variant"],
        "routing_rule": "v1:test",
        "opened_at": opened,
        "last_alert_at": opened,
        "due_at": opened,
        "resolved_at": resolved,
        "updated_at": opened,
        "version": 1,
    }


def make_world(seed: int = 7, transactions: int = 600) -> World:
    """Scores, and cases holding most of their alerts (1-4 alerts each)."""
    rng = random.Random(seed)
    scores = [_score(rng, 1000 + i) for i in range(transactions)]
    alerted = [s for s in scores if s["decision"] != "approve" and rng.random() < 0.85]
    queue_ids = {i + 1: name for i, name in enumerate(QUEUE_NAMES)}
    cases, case_alerts = [], []
    while alerted:
        size = rng.randint(1, 4)
        take, alerted = alerted[:size], alerted[size:]
        case = _case(rng, len(cases) + 1, take, rng.choice(list(queue_ids)))
        cases.append(case)
        case_alerts += [_case_alert(a, case["id"]) for a in take]
    return World(scores, cases, case_alerts, queue_ids)


def _case_alert(score: dict[str, Any], case_id: int) -> dict[str, Any]:
    names = ("transaction_id", "customer_id", "terminal_id", "tx_datetime", "tx_amount")
    more = ("risk_score", "decision", "reason_codes", "model_version", "variant")
    return {
        **{n: score[n] for n in names + more},
        "case_id": case_id,
        "alerted_at": score["scored_at"],
    }


def write_world(engine: Engine, world: World) -> None:
    """Write the world straight into the tables (queues, scores, cases, case alerts)."""
    queues = [
        {"id": i, "name": n, "description": n, "sla_minutes": 60, "created_at": FIRST_DAY}
        for i, n in world.queue_names.items()
    ]
    with engine.begin() as connection:
        connection.execute(QUEUES.delete())
        connection.execute(QUEUES.insert(), queues)
        connection.execute(SCORES.insert(), world.scores)
        connection.execute(CASES.insert(), world.cases)
        connection.execute(CASE_ALERTS.insert(), world.case_alerts)


# --- the brute force ------------------------------------------------------------------------


def _score_keys(score: dict[str, Any], group_by: str) -> list[Any]:
    if group_by == "rule":
        return list(json.loads(score["policy_rules"] or "[]"))
    if group_by == "day":
        return [score["scored_at"].date().isoformat()]
    if group_by == "model":
        return [score["model_version"]]
    version = score["policy_version"]
    return [NO_POLICY if version is None else str(version)]


def _case_weights(world: World, case: dict[str, Any], group_by: str, at: Any) -> Counter[Any]:
    """The case's groups, each with how many of its alerts are in it."""
    if group_by == "queue":
        return Counter({world.queue_names[case["queue_id"]]: case["alert_count"]})
    if group_by == "day":
        return Counter({at.date().isoformat(): case["alert_count"]})
    if group_by == "model":  # the case's own: the model of the alert that opened it
        return Counter({case["model_version"]: case["alert_count"]})
    by_id = {s["transaction_id"]: s for s in world.scores}
    weights: Counter[Any] = Counter()
    for member in world.case_alerts:
        if member["case_id"] == case["id"]:
            weights.update(_score_keys(by_id[member["transaction_id"]], group_by))
    return weights


def _volumes(world: World, begin: Any, stop: Any, group_by: str) -> dict[str, list[Any]]:
    figures: dict[str, list[Any]] = defaultdict(lambda: [0, 0])
    if group_by == "queue":
        queue_of = {c["id"]: world.queue_names[c["queue_id"]] for c in world.cases}
        for member in world.case_alerts:
            if begin <= member["alerted_at"] < stop:
                figures[queue_of[member["case_id"]]][1] += 1
        return figures
    for score in world.scores:
        if begin <= score["scored_at"] < stop:
            for key in _score_keys(score, group_by):
                figures[key][0] += 1
                figures[key][1] += score["decision"] != "approve"
    return figures


def expected_history(world: World, start: dt.date, end: dt.date, group_by: str) -> list[Any]:
    """The history rows by brute force, as comparable tuples ordered by group."""
    begin = dt.datetime.combine(start, dt.time())
    stop = dt.datetime.combine(end, dt.time()) + dt.timedelta(days=1)
    volumes = _volumes(world, begin, stop, group_by)
    opened: Counter[Any] = Counter()
    resolved: dict[Any, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    minutes: dict[Any, list[float]] = defaultdict(list)
    for case in world.cases:
        if begin <= case["opened_at"] < stop:
            opened.update(_case_weights(world, case, group_by, case["opened_at"]).keys())
        if case["resolved_at"] is None or not begin <= case["resolved_at"] < stop:
            continue
        took = (case["resolved_at"] - case["opened_at"]).total_seconds() / 60
        for key, weight in _case_weights(world, case, group_by, case["resolved_at"]).items():
            figures = resolved[key]
            figures[0] += 1
            figures[1] += case["disposition"] == "confirmed-fraud"
            figures[2] += weight
            figures[3] += weight if case["disposition"] == "legitimate" else 0
            minutes[key].append(took)
    keys = set(volumes) | set(opened) | set(resolved)
    return [
        _expected_row(group_by, key, volumes, opened, resolved, minutes)
        for key in sorted(keys, key=_brute_order)
    ]


def _brute_order(key: str) -> tuple[int, Any]:
    if key == NO_POLICY:
        return (2, 0)
    return (0, int(key)) if key.isdigit() else (1, key)


def _expected_row(
    group_by: str, key: Any, volumes: Any, opened: Any, resolved: Any, minutes: Any
) -> tuple[Any, ...]:
    transactions, alerts = volumes.get(key, [0, 0])
    if group_by == "queue":
        transactions = None
    cases, frauds, resolved_alerts, legit = resolved.get(key, [0, 0, 0, 0])
    times = minutes.get(key)
    return (
        key,
        transactions,
        alerts,
        alerts / transactions if transactions else None,
        opened[key],
        cases,
        frauds,
        frauds / cases if cases else None,
        resolved_alerts,
        legit,
        legit / resolved_alerts if resolved_alerts else None,
        float(np.quantile(times, 0.5)) if times else None,
        float(np.quantile(times, 0.9)) if times else None,
    )


def as_tuple(row: HistoryRow) -> tuple[Any, ...]:
    """A history row as the brute force spells it (without ``group_by``)."""
    return tuple(getattr(row, f.name) for f in fields(HistoryRow))[1:]


def expected_live(world: World, since: Any, until: Any, seconds: int) -> dict[Any, Counter[str]]:
    """Decisions by (bucket start, dimension, value), by brute force."""
    counts: dict[Any, Counter[str]] = defaultdict(Counter)
    for score in world.scores:
        if since <= score["scored_at"] < until:
            epoch = math.floor((score["scored_at"] - _EPOCH).total_seconds())
            start = _EPOCH + dt.timedelta(seconds=epoch // seconds * seconds)
            version = score["policy_version"]
            for key in (
                ("all", "all"),
                ("variant", score["variant"]),
                ("policy_version", NO_POLICY if version is None else str(version)),
            ):
                counts[(start, *key)][score["decision"]] += 1
    return counts


def check_history(engine: Engine, world: World, start: dt.date, end: dt.date) -> None:
    """Every grouping of ``history`` against the brute force."""
    for group_by in GroupBy:
        got = [as_tuple(r) for r in history(engine, start, end, group_by)]
        want = expected_history(world, start, end, group_by.value)
        assert [g[0] for g in got] == [w[0] for w in want], group_by
        for g, w in zip(got, want, strict=True):
            assert same_figures(g, w), (group_by, g, w)


def same_figures(got: tuple[Any, ...], want: tuple[Any, ...]) -> bool:
    """Equal; rates within float rounding, resolution minutes within 6 ms.

    (SQLite's date arithmetic keeps milliseconds, the test's times have microseconds.)
    """
    counts_and_rates = [
        g == pytest.approx(w, rel=1e-12) if isinstance(w, float) else g == w
        for g, w in zip(got[:-2], want[:-2], strict=True)
    ]
    minutes = [g == pytest.approx(w, abs=1e-4) for g, w in zip(got[-2:], want[-2:], strict=True)]
    return len(got) == len(want) and all(counts_and_rates + minutes)


def check_live(engine: Engine, world: World, since: Any, until: Any, seconds: int) -> None:
    """``live_window`` against the brute force."""
    rows = live_window(engine, since, until, seconds)
    want = expected_live(world, since, until, seconds)
    got = {(r.bucket_start, r.dimension, r.value): r for r in rows}
    assert set(got) == set(want)
    for key, row in got.items():
        decisions = want[key]
        assert (row.approve, row.review, row.decline) == (
            decisions["approve"],
            decisions["review"],
            decisions["decline"],
        )
        assert row.transactions == sum(decisions.values())
        assert row.alert_rate == pytest.approx((row.review + row.decline) / row.transactions)


# --- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture(scope="module")
def engine(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('analytics')) / 'app.db'}"
    made = open_database(url)
    AlertStore(url).close()
    write_world(made, world)
    yield made
    made.dispose()


def test_world_covers_every_case_kind(world: World) -> None:
    """The fixture exercises what the figures distinguish (else the checks prove little)."""
    assert {c["disposition"] for c in world.cases} == {*DISPOSITIONS, None}
    assert any(c["alert_count"] > 1 for c in world.cases)
    models = defaultdict(set)
    for member in world.case_alerts:
        models[member["case_id"]].add(member["model_version"])
    assert any(len(m) > 1 for m in models.values())  # a case's model ≠ some of its alerts'
    assert {r for s in world.scores for r in json.loads(s["policy_rules"] or "[]")} == set(RULES)
    assert any(s["policy_rules"] is None for s in world.scores)
    resolved_later = [c for c in world.cases if c["resolved_at"] and c["resolved_at"].day > 3]
    assert resolved_later


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2026, 3, 1), dt.date(2026, 3, 9)),  # everything
        (dt.date(2026, 3, 2), dt.date(2026, 3, 3)),  # two middle days: edges cut cases
        (dt.date(2026, 3, 4), dt.date(2026, 3, 4)),  # one day
        (dt.date(2026, 4, 1), dt.date(2026, 4, 2)),  # nothing
    ],
)
def test_history_matches_brute_force(
    engine: Engine, world: World, start: dt.date, end: dt.date
) -> None:
    check_history(engine, world, start, end)


def test_history_days_are_inclusive(engine: Engine, world: World) -> None:
    day = dt.date(2026, 3, 2)
    rows = history(engine, day, day, GroupBy.DAY)
    want = sum(s["scored_at"].date() == day for s in world.scores)
    assert [(r.group, r.transactions) for r in rows if r.transactions] == [(day.isoformat(), want)]


def test_history_refuses_a_reversed_range(engine: Engine) -> None:
    with pytest.raises(ValueError, match="reversed: start 2026-03-03 is after end 2026-03-02"):
        history(engine, dt.date(2026, 3, 3), dt.date(2026, 3, 2), "day")


def test_history_names_the_groupings_when_one_is_unknown(engine: Engine) -> None:
    with pytest.raises(ValueError, match="cannot group by 'terminal': one of queue, rule"):
        history(engine, dt.date(2026, 3, 1), dt.date(2026, 3, 2), "terminal")


def test_history_orders_policy_versions_by_number_none_last(engine: Engine) -> None:
    rows = history(engine, dt.date(2026, 3, 1), dt.date(2026, 3, 9), "policy_version")
    assert [r.group for r in rows] == ["1", "2", "10", NO_POLICY]


@pytest.mark.parametrize("seconds", [60, 3600, 86_400])
def test_live_window_matches_brute_force(engine: Engine, world: World, seconds: int) -> None:
    since = FIRST_DAY + dt.timedelta(hours=20, minutes=7, seconds=13)
    check_live(engine, world, since, since + dt.timedelta(days=2), seconds)


def test_live_rates_are_over_the_part_of_the_bucket_inside_the_window(
    engine: Engine, world: World
) -> None:
    since = FIRST_DAY + dt.timedelta(hours=30, minutes=15)  # a quarter into an hour
    rows = live_window(engine, since, since + dt.timedelta(hours=2), 3600)
    first = next(r for r in rows if r.dimension == "all")
    assert first.bucket_start == since.replace(minute=0)
    assert first.transactions_per_second == pytest.approx(first.transactions / 2700)
    assert first.decisions_per_minute == pytest.approx(first.transactions / 45)


def test_live_rows_are_ordered_by_bucket_then_dimension(engine: Engine) -> None:
    rows = live_window(engine, FIRST_DAY, FIRST_DAY + dt.timedelta(days=1), 21_600)
    order = {"all": 0, "variant": 1, "policy_version": 2}
    keys = [(r.bucket_start, order[r.dimension], r.value) for r in rows]
    assert keys == sorted(keys)
    assert {r.dimension for r in rows} == set(order)


@pytest.mark.parametrize(
    ("until_hours", "seconds", "message"),
    [
        (0, 60, "empty or reversed"),
        (-1, 60, "empty or reversed"),
        (1, 0, "positive whole number"),
        (1, 1.5, "positive whole number"),
        (24 * 30, 1, "at most 10,000"),
    ],
)
def test_live_window_refuses_bad_windows(
    engine: Engine, until_hours: int, seconds: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        live_window(engine, FIRST_DAY, FIRST_DAY + dt.timedelta(hours=until_hours), seconds)


def test_csv_is_rfc4180_with_the_field_order(engine: Engine) -> None:
    rows = history(engine, dt.date(2026, 3, 1), dt.date(2026, 3, 9), GroupBy.QUEUE)
    text = to_csv(rows)
    assert text.count("\r\n") == len(rows) + 1 and "\n" not in text.replace("\r\n", "")
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == [f.name for f in fields(HistoryRow)]
    assert sorted(r[1] for r in parsed[1:]) == sorted(QUEUE_NAMES)
    quoted = next(r for r in rows if r.group.startswith("odd"))
    assert '"odd, ""quoted"" queue"' in text
    back = next(r for r in parsed[1:] if r[1] == quoted.group)
    assert back[2] == back[4] == ""  # a queue has no transaction count, so no alert rate
    assert int(back[3]) == quoted.alerts


def test_csv_of_live_rows_writes_times_in_iso(engine: Engine) -> None:
    rows = live_window(engine, FIRST_DAY, FIRST_DAY + dt.timedelta(hours=3), 3600)
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows), newline="")))
    assert parsed[0]["bucket_start"] == "2026-03-01T00:00:00"
    assert [int(p["transactions"]) for p in parsed] == [r.transactions for r in rows]


def test_csv_of_no_rows() -> None:
    assert to_csv([]) == ""
    assert to_csv([], LiveRow) == ",".join(f.name for f in fields(LiveRow)) + "\r\n"


def test_csv_refuses_mixed_rows(engine: Engine) -> None:
    live = live_window(engine, FIRST_DAY, FIRST_DAY + dt.timedelta(hours=3), 3600)
    past = history(engine, dt.date(2026, 3, 1), dt.date(2026, 3, 1), "day")
    with pytest.raises(ValueError, match="every row must be a LiveRow"):
        to_csv([*live, *past])  # type: ignore[list-item]


def test_history_orders_model_versions_by_number(engine: Engine) -> None:
    rows = history(engine, dt.date(2026, 3, 1), dt.date(2026, 3, 9), GroupBy.MODEL)
    assert [r.group for r in rows] == ["7", "8", "10"]
