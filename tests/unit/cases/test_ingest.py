"""Ingestion: pending alerts become cases exactly once, joined per customer within the window.

Idempotence is shown three ways (ingesting again, writing the same alerts to the store again,
and a crash between the case insert and the alert marking), and the guard that makes the third
hold is taken away once to show the test would catch its absence.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from tests.unit.cases.case_doubles import (
    DAY,
    CaseWorld,
    alert,
    counts,
    inconsistent_cases,
)

from fraudrisk.alerts.store import ALERTS, ScoreRecord
from fraudrisk.cases import ingest
from fraudrisk.cases.ingest import CASED
from fraudrisk.cases.lifecycle import Status
from fraudrisk.cases.tables import CASE_ALERTS, CASE_EVENTS, CASES, QUEUES

HOUR = dt.timedelta(hours=1)


def cases_of(made: CaseWorld, customer: int) -> list[Any]:
    query = (
        sa.select(CASES, QUEUES.c.name.label("queue"), QUEUES.c.sla_minutes)
        .join(QUEUES, QUEUES.c.id == CASES.c.queue_id)
        .where(CASES.c.customer_id == customer)
        .order_by(CASES.c.id)
    )
    with made.engine.connect() as connection:
        return list(connection.execute(query))


def members(made: CaseWorld, case_id: int) -> list[int]:
    query = sa.select(CASE_ALERTS.c.transaction_id).where(CASE_ALERTS.c.case_id == case_id)
    with made.engine.connect() as connection:
        return sorted(connection.execute(query).scalars())


def many(count: int, customers: int = 10) -> list[ScoreRecord]:
    return [
        alert(i, i % customers, DAY + dt.timedelta(minutes=i), 10.0 + i % 50, 0.3)
        for i in range(1, count + 1)
    ]


def test_ingesting_twice_adds_nothing(fresh: CaseWorld) -> None:
    fresh.store.write(many(60))
    first = fresh.ingester(batch=7).ingest_all()
    assert (first.alerts, first.opened, first.opened + first.joined) == (60, 10, 60)
    after_first = counts(fresh.engine)
    assert after_first == {"cases": 10, "case_alerts": 60, "alert_count": 60, "open_alerts": 0}

    again = fresh.ingester().ingest_all()
    assert (again.alerts, again.opened, again.joined, again.case_ids) == (0, 0, 0, set())
    assert counts(fresh.engine) == after_first
    assert inconsistent_cases(fresh.engine) == []


def test_writing_the_same_alerts_again_adds_nothing(fresh: CaseWorld) -> None:
    batch = many(30)
    fresh.store.write(batch)
    fresh.ingester().ingest_all()
    before = counts(fresh.engine)

    replayed = fresh.store.write(batch)  # the scorer replays after a crash
    assert (replayed.scores, replayed.alerts) == (0, 0)
    assert fresh.ingester().ingest_all().alerts == 0
    assert counts(fresh.engine) == before


def test_a_crash_between_case_insert_and_alert_marking_adds_nothing(fresh: CaseWorld) -> None:
    fresh.store.write(many(40))
    fresh.ingester(batch=9).ingest_all()
    before = counts(fresh.engine)
    # What a crash after writing the cases and before marking the alerts would leave: alerts
    # that a case holds, still "open".
    with fresh.engine.begin() as connection:
        connection.execute(ALERTS.update().values(status="open"))

    redone = fresh.ingester(batch=9).ingest_all()
    assert redone.alerts == 40 and (redone.opened, redone.joined) == (0, 0)
    assert counts(fresh.engine) == before  # open_alerts back to 0: marked cased again
    with fresh.engine.connect() as connection:
        statuses = set(connection.execute(sa.select(ALERTS.c.status)).scalars())
    assert statuses == {CASED}


def test_without_the_case_alerts_guard_the_crash_replay_fails(
    fresh: CaseWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negative control: the previous test can fail (the guard is what makes it pass)."""
    fresh.store.write(many(40))
    fresh.ingester().ingest_all()
    before = counts(fresh.engine)
    with fresh.engine.begin() as connection:
        connection.execute(ALERTS.update().values(status="open"))

    monkeypatch.setattr(ingest, "_not_cased", lambda _connection, alerts: list(alerts))
    with pytest.raises(sa.exc.IntegrityError, match=r"case_alerts\.transaction_id"):
        fresh.ingester().ingest_all()
    # the batch's transaction rolled back whole: nothing doubled, the alerts still pending
    assert counts(fresh.engine) == {**before, "open_alerts": 40}
    assert inconsistent_cases(fresh.engine) == []


def test_alerts_within_the_join_window_join_one_case_beyond_it_a_new_one(
    fresh: CaseWorld,
) -> None:
    window = dt.timedelta(hours=72)
    times = [DAY, DAY + 71 * HOUR, DAY + 71 * HOUR + window]  # the last: exactly the window
    later = times[-1] + window + dt.timedelta(seconds=1)  # one second beyond it
    fresh.store.write([alert(i + 1, 5, at) for i, at in enumerate([*times, later])])
    fresh.store.write([alert(10, 6, DAY)])  # another customer never joins
    done = fresh.ingester(join_hours=72).ingest_all()
    assert (done.alerts, done.opened, done.joined) == (5, 3, 2)
    first, second = cases_of(fresh, 5)
    assert members(fresh, first.id) == [1, 2, 3] and members(fresh, second.id) == [4]
    assert first.last_alert_at == times[-1]
    assert [members(fresh, c.id) for c in cases_of(fresh, 6)] == [[10]]


def test_a_later_ingest_joins_the_open_case_of_an_earlier_one(fresh: CaseWorld) -> None:
    fresh.store.write([alert(1, 5, DAY)])
    assert fresh.ingester().ingest_all().opened == 1
    fresh.store.write([alert(2, 5, DAY + 10 * HOUR)])
    joined = fresh.ingester().ingest_all()
    assert (joined.opened, joined.joined) == (0, 1)
    (case,) = cases_of(fresh, 5)
    assert case.alert_count == 2 and case.version == 2  # an extended case is a new version
    fresh.store.write([alert(3, 5, DAY + 83 * HOUR)])  # 73 h after the case's last alert
    assert fresh.ingester().ingest_all().opened == 1
    assert [members(fresh, c.id) for c in cases_of(fresh, 5)] == [[1, 2], [3]]


def test_a_resolved_case_is_not_joined(fresh: CaseWorld) -> None:
    fresh.store.write([alert(1, 5, DAY)])
    fresh.ingester().ingest_all()
    with fresh.engine.begin() as connection:
        connection.execute(CASES.update().values(status=Status.RESOLVED.value))
    fresh.store.write([alert(2, 5, DAY + HOUR)])
    assert fresh.ingester().ingest_all().opened == 1
    assert [members(fresh, c.id) for c in cases_of(fresh, 5)] == [[1], [2]]


def test_priority_is_the_sum_of_risk_times_amount(fresh: CaseWorld) -> None:
    parts = [(120.0, 0.9, "review"), (80.0, 0.25, "decline"), (10.5, 0.6, "review")]
    fresh.store.write(
        [
            alert(i + 1, 8, DAY + i * HOUR, amount, risk, decision)
            for i, (amount, risk, decision) in enumerate(parts)
        ]
    )
    fresh.ingester().ingest_all()
    (case,) = cases_of(fresh, 8)
    assert case.priority == pytest.approx(sum(a * r for a, r, _ in parts))
    assert case.amount_total == pytest.approx(210.5)
    assert case.max_risk == pytest.approx(0.9)
    assert case.alert_count == 3
    assert case.decision == "decline"  # one declined alert makes the case a decline
    assert case.last_alert_at == DAY + 2 * HOUR

    fresh.store.write([alert(9, 8, DAY + 3 * HOUR, 1000.0, 0.1)])  # a later ingest adds to it
    fresh.ingester().ingest_all()
    (case,) = cases_of(fresh, 8)
    assert case.priority == pytest.approx(sum(a * r for a, r, _ in parts) + 100.0)


def test_a_new_case_is_routed_and_due_after_its_queues_sla(fresh: CaseWorld) -> None:
    fresh.store.write(
        [
            alert(1, 1, amount=300.0, decision="decline"),  # large-amount comes first
            alert(2, 2, amount=20.0, decision="decline"),
            alert(3, 3, amount=20.0),
        ]
    )
    fresh.ingester().ingest_all()
    routed = {c: cases_of(fresh, c)[0] for c in (1, 2, 3)}
    assert {c: (r.queue, r.routing_rule) for c, r in routed.items()} == {
        1: ("high-value", "v1:large-amount"),
        2: ("declines", "v1:declined"),
        3: ("general", "v1:default"),
    }
    for row in routed.values():
        assert row.status == Status.NEW.value and row.assignee_id is None
        assert row.due_at - row.opened_at == dt.timedelta(minutes=row.sla_minutes)


def test_the_timeline_says_opened_and_each_alert_added(fresh: CaseWorld) -> None:
    fresh.store.write([alert(1, 4, DAY), alert(2, 4, DAY + HOUR)])
    fresh.ingester().ingest_all()
    fresh.store.write([alert(3, 4, DAY + 2 * HOUR)])
    fresh.ingester().ingest_all()
    (case,) = cases_of(fresh, 4)
    with fresh.engine.connect() as connection:
        events = connection.execute(
            sa.select(CASE_EVENTS.c.type, CASE_EVENTS.c.data, CASE_EVENTS.c.actor)
            .where(CASE_EVENTS.c.case_id == case.id)
            .order_by(CASE_EVENTS.c.id)
        ).all()
    assert [(e.type, json.loads(e.data)) for e in events] == [
        ("opened", {"rule": "v1:default"}),
        ("alert.added", {"tx": 2}),
        ("alert.added", {"tx": 3}),
    ]
    assert {e.actor for e in events} == {"system"}


def test_a_case_records_the_policy_version_that_decided_its_first_alert(fresh: CaseWorld) -> None:
    decided = dataclasses.replace(alert(1, 5, DAY), policy_version=3)
    fresh.store.write([decided, alert(2, 6, DAY)])
    fresh.ingester().ingest_all()
    assert cases_of(fresh, 5)[0].policy_version == "v3"
    assert cases_of(fresh, 6)[0].policy_version is None  # the model's thresholds decided
