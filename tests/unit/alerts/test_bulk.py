"""The stream's sink: bulk upserts into the alert store (SQLite), exact under concurrent writers."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from fraudrisk.alerts.records import ScoreColumns, ScoreRecord
from fraudrisk.alerts.store import ALERTS, SCORES, AlertStore

START = dt.datetime(2018, 9, 1, 12)


def batch(ids: range, decision: str = "approve", risk: float = 0.01) -> ScoreColumns:
    n = len(ids)
    return ScoreColumns(
        transaction_id=list(ids),
        customer_id=[i % 7 for i in ids],
        terminal_id=[3] * n,
        tx_datetime=[START + dt.timedelta(seconds=i) for i in ids],
        tx_amount=[20.0] * n,
        risk_score=[risk] * n,
        decision=[decision] * n,
        reason_codes=["[]"] * n,
        model_version=["1"] * n,
        variant=["champion"] * n,
        fallback=[False] * n,
    )


@pytest.fixture()
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'alerts.db'}"


def test_a_bulk_write_stores_every_row_and_alerts_for_review_and_decline(url: str) -> None:
    store = AlertStore(url)
    written = store.write_columns(batch(range(0, 50)))
    flagged = store.write_columns(batch(range(50, 60), "decline", 0.9))
    assert (written.scores, written.alerts, written.earlier) == (50, 0, {})
    assert (flagged.scores, flagged.alerts) == (10, 10)
    assert store.count() == 60 and store.count("alerts") == 10
    top = store.top_alerts(1)[0]
    assert top["priority"] == pytest.approx(18.0) and top["tx_datetime"] == START + dt.timedelta(
        seconds=50
    )


def test_a_replay_keeps_the_first_score_and_reports_it(url: str) -> None:
    store = AlertStore(url)
    store.write_columns(batch(range(0, 10), "review", 0.3))
    replay = store.write_columns(batch(range(5, 15), "approve", 0.02))  # scored differently
    assert (replay.scores, replay.alerts) == (5, 0)
    assert sorted(replay.earlier) == [5, 6, 7, 8, 9]
    assert replay.earlier[5] == ScoreRecord(
        5, 5, 3, START + dt.timedelta(seconds=5), 20.0, 0.3, "review", "[]", "1", "champion", False
    )
    assert store.count("alerts") == 10  # the first write's alerts only


def test_times_are_stored_as_the_orm_stores_them(url: str) -> None:
    """Range queries of the monitoring (SQLAlchemy, datetime bounds) see the bulk rows right."""
    store = AlertStore(url)
    store.write_columns(batch(range(0, 10)))
    store.write([*batch(range(10, 20)).records()])
    at = SCORES.c.tx_datetime >= START + dt.timedelta(seconds=5)
    with store.engine.connect() as connection:
        inside = connection.execute(sa.select(sa.func.count()).where(at)).scalar_one()
        raw = connection.exec_driver_sql("SELECT DISTINCT length(tx_datetime) FROM scores")
        lengths = {row[0] for row in raw}
    assert inside == 15 and lengths == {26}  # 'YYYY-MM-DD HH:MM:SS.ffffff'


def test_concurrent_writers_count_each_transaction_once_and_alerts_follow_the_stored_score(
    url: str,
) -> None:
    """Two scorers (e.g. during a rebalance) write the same batches at once, scored differently."""
    stores = [AlertStore(url), AlertStore(url)]
    rounds, size = 40, 100
    new = [[0] * rounds, [0] * rounds]
    errors: list[BaseException] = []
    start_together = threading.Barrier(2, timeout=20)

    def write(which: int) -> None:
        decision, risk = ("decline", 0.9) if which else ("approve", 0.01)
        try:
            for round_ in range(rounds):
                start_together.wait()
                ids = range(round_ * size, (round_ + 1) * size)
                new[which][round_] = stores[which].write_columns(batch(ids, decision, risk)).scores
        except BaseException as error:  # e.g. a lock upgrade refused: the test must see it
            errors.append(error)
            start_together.abort()

    threads = [threading.Thread(target=write, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not [e for e in errors if not isinstance(e, threading.BrokenBarrierError)], errors
    assert [a + b for a, b in zip(*new, strict=True)] == [size] * rounds  # new exactly once
    assert stores[0].count() == rounds * size
    query = (
        sa.select(sa.func.count())
        .select_from(ALERTS.join(SCORES, ALERTS.c.transaction_id == SCORES.c.transaction_id))
        .where(SCORES.c.decision == "decline")
    )
    with stores[0].engine.connect() as connection:
        consistent = connection.execute(query).scalar_one()
    assert consistent == stores[0].count("alerts")  # no alert on an approved score


def test_records_and_columns_convert_both_ways() -> None:
    aware = ScoreRecord(
        1,
        2,
        3,
        dt.datetime(2018, 9, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        1.0,
        0.5,
        "review",
        "[]",
        "1",
        "champion",
        False,
    )
    columns = ScoreColumns.of([aware])
    assert columns.tx_datetime == [dt.datetime(2018, 9, 1, 12)]  # naive UTC
    (record,) = columns.records()
    assert record.tx_datetime == dt.datetime(2018, 9, 1, 12) and record.decision == "review"
    assert len(columns) == 1
