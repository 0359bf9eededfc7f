"""Ingestion exactly once on PostgreSQL, with concurrent ingesters and one killed mid-batch.

10,000 alerts of 300 customers, in four bursts five days apart (so each customer's alerts make
about four cases: the join window is 72 h). Two ingesters run at once with small batches while
a third takes a few batches and dies inside its next one (an exception after it wrote cases
and case alerts, before it marked the alerts: its transaction rolls back, as a killed process's
would); a last ingester then takes what is left. Every alert must be in exactly one case, every
case's count and priority must be those of its alerts.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from tests.unit.cases.case_doubles import DAY, CaseWorld, alert, counts, inconsistent_cases, world

from fraudrisk.alerts.store import ALERTS
from fraudrisk.cases import ingest
from fraudrisk.cases.ingest import CaseIngester, Ingested
from fraudrisk.cases.tables import CASE_ALERTS, CASES

pytestmark = pytest.mark.integration

ALERT_COUNT, CUSTOMERS, BATCH = 10_000, 300, 250
WINDOW = dt.timedelta(hours=72)


class KilledError(RuntimeError):
    """The ingester's process died."""


class DiesMidBatch(CaseIngester):
    """An ingester that dies inside its ``survives + 1``-th batch, after writing the cases."""

    def __init__(self, *args: Any, survives: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.survives, self.batches = survives, 0

    def _into_cases(self, connection: Connection, alerts: list[Any]) -> Ingested:
        done = super()._into_cases(connection, alerts)
        self.batches += 1
        if self.batches > self.survives:
            raise KilledError(
                f"killed in batch {self.batches}, before marking {len(alerts)} alerts"
            )
        return done


def bursts(count: int) -> list[Any]:
    quarter = count // 4
    return [
        alert(
            i,
            i % CUSTOMERS,
            DAY + dt.timedelta(minutes=4 * i) + ((i - 1) // quarter) * dt.timedelta(days=5),
            5.0 + (i * 13) % 300,
            ((i * 7) % 100) / 100,
            "decline" if i % 5 == 0 else "review",
        )
        for i in range(1, count + 1)
    ]


@pytest.fixture()
def desk(case_db: str) -> Iterator[CaseWorld]:
    made = world(case_db, pool_size=10)
    yield made
    with made.engine.begin() as connection:  # the next test starts from no alert, no case
        connection.exec_driver_sql("TRUNCATE cases, alerts, scores CASCADE")  # + referrers
    made.close()


def run_together(*jobs: Any) -> list[BaseException | None]:
    """Run each job in its own thread, started together; returns what each raised."""
    outcome: list[BaseException | None] = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(n: int, job: Any) -> None:
        start.wait()
        try:
            job()
        except BaseException as error:  # reported to the test
            outcome[n] = error

    threads = [threading.Thread(target=run, args=(n, job)) for n, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    return outcome


def uncased_alerts(desk: CaseWorld) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(
            ALERTS.outerjoin(CASE_ALERTS, CASE_ALERTS.c.transaction_id == ALERTS.c.transaction_id)
        )
        .where(CASE_ALERTS.c.transaction_id.is_(None))
    )
    with desk.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def test_every_alert_lands_in_exactly_one_case(desk: CaseWorld) -> None:
    written = desk.store.write(bursts(ALERT_COUNT))
    assert written.alerts == ALERT_COUNT
    first, second = desk.ingester(batch=BATCH), desk.ingester(batch=BATCH)
    dying = DiesMidBatch(desk.engine, desk.rules, WINDOW, BATCH, survives=3)

    def die() -> None:
        while True:
            dying.ingest_batch()

    outcome = run_together(first.ingest_all, second.ingest_all, die)
    assert outcome[:2] == [None, None]
    assert isinstance(outcome[2], KilledError) and dying.batches == 4
    desk.ingester(batch=BATCH).ingest_all()  # the restarted ingester finishes the work

    assert counts(desk.engine) | {"cases": None} == {
        "cases": None,
        "case_alerts": ALERT_COUNT,
        "alert_count": ALERT_COUNT,
        "open_alerts": 0,
    }
    assert uncased_alerts(desk) == 0
    # No lost update: two batches that extend one customer's case both count in it (without
    # the customer locks of the ingester the later write overwrote the earlier one's totals).
    assert inconsistent_cases(desk.engine) == []
    # No customer got two cases for one burst (two batches each opening one, concurrently).
    # The killed batch's alerts are taken last, after the customer's next burst opened a
    # case: being older than that case's last alert they join it (the join window is
    # measured from a case's last alert), which may move alerts between a customer's cases
    # but never adds one.
    with desk.engine.connect() as connection:
        per_customer = (
            connection.execute(
                sa.select(sa.func.count()).select_from(CASES).group_by(CASES.c.customer_id)
            )
            .scalars()
            .all()
        )
    assert len(per_customer) == CUSTOMERS and set(per_customer) == {4}
    assert desk.ingester(batch=BATCH).ingest_all().alerts == 0


@pytest.mark.parametrize("locked", [True, False], ids=["skip-locked", "no-lock"])
def test_two_ingesters_on_the_same_alerts_never_double_them(
    desk: CaseWorld, monkeypatch: pytest.MonkeyPatch, locked: bool
) -> None:
    """What ``FOR UPDATE SKIP LOCKED`` gives, and what catches its absence.

    Both ingesters are held just before they write (after reading their batch and checking
    which alerts a case holds) until both got there: the worst interleaving, every time.
    With the lock they hold different alerts and both succeed. Without it (the negative
    control: ``with_for_update`` made a no-op) they hold the *same* alerts; the ``case_alerts``
    primary key makes the second writer wait for the first and then fail with a unique
    violation — its whole batch rolls back — rather than double the alerts.
    """
    desk.store.write(bursts(2 * BATCH))
    if not locked:
        monkeypatch.setattr(sa.Select, "with_for_update", lambda self, **_: self)
    both_read = threading.Barrier(2, timeout=30)
    held: list[set[int]] = []
    real_not_cased = ingest._not_cased

    def not_cased_then_wait(connection: Connection, alerts: list[Any]) -> list[Any]:
        pending = real_not_cased(connection, alerts)
        held.append({a.transaction_id for a in pending})
        both_read.wait()
        return pending

    monkeypatch.setattr(ingest, "_not_cased", not_cased_then_wait)
    ingesters = [desk.ingester(batch=BATCH), desk.ingester(batch=BATCH)]
    outcome = run_together(*(i.ingest_batch for i in ingesters))
    monkeypatch.undo()

    if locked:
        assert outcome == [None, None] and held[0].isdisjoint(held[1])
        assert counts(desk.engine)["case_alerts"] == 2 * BATCH
    else:
        assert held[0] == held[1]  # without the lock both took the same batch
        failed = [o for o in outcome if o is not None]
        assert len(failed) == 1, outcome
        assert isinstance(failed[0], psycopg.errors.UniqueViolation | sa.exc.IntegrityError)
        assert "case_alerts_pkey" in str(failed[0])
        assert counts(desk.engine)["case_alerts"] == BATCH  # one batch, once
    assert inconsistent_cases(desk.engine) == []
    desk.ingester(batch=BATCH).ingest_all()
    assert counts(desk.engine) | {"cases": None} == {
        "cases": None,
        "case_alerts": 2 * BATCH,
        "alert_count": 2 * BATCH,
        "open_alerts": 0,
    }
    assert inconsistent_cases(desk.engine) == []
