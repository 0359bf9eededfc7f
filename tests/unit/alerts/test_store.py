"""The score and alert store: idempotent batch upserts, alerts for review/decline, priority."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fraudrisk.alerts.records import ScoreRecord
from fraudrisk.alerts.store import AlertStore


def record(
    tx_id: int, decision: str = "approve", risk: float = 0.01, amount: float = 10.0
) -> ScoreRecord:
    return ScoreRecord(
        transaction_id=tx_id,
        customer_id=tx_id % 7,
        terminal_id=3,
        tx_datetime=dt.datetime(2018, 9, 1, 12, tzinfo=dt.UTC),
        tx_amount=amount,
        risk_score=risk,
        decision=decision,
        reason_codes="[]",
        model_version="1",
        variant="champion",
        fallback=False,
    )


@pytest.fixture()
def store(tmp_path: Path) -> AlertStore:
    return AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}")


def test_a_batch_writes_scores_and_alerts_for_review_and_decline(store: AlertStore) -> None:
    batch = [record(1), record(2, "review", 0.4, 50), record(3, "decline", 0.9, 500)]
    written = store.write(batch)
    assert (written.scores, written.alerts) == (3, 2) and written.stored == tuple(batch)
    assert store.count("scores") == 3 and store.count("alerts") == 2
    top = store.top_alerts()
    assert [a["transaction_id"] for a in top] == [3, 2]
    assert top[0]["priority"] == pytest.approx(450.0) and top[0]["status"] == "open"
    assert top[0]["tx_datetime"] == dt.datetime(2018, 9, 1, 12)  # stored as naive UTC


def test_replaying_a_batch_changes_nothing(store: AlertStore) -> None:
    batch = [record(i, "review" if i % 3 == 0 else "approve") for i in range(100)]
    first = store.write(batch)
    again = store.write([*batch[50:], record(1000, "decline", 0.99)])
    assert (first.scores, first.alerts) == (100, 34)
    assert (again.scores, again.alerts) == (1, 1)
    assert store.count() == 101 and sorted(store.transaction_ids()) == [*range(100), 1000]


def test_the_first_write_wins(store: AlertStore) -> None:
    store.write([record(5, "review", 0.3)])
    replay = store.write([record(5, "approve", 0.01), record(6)])  # 5 scored differently
    assert store.top_alerts()[0]["risk_score"] == 0.3
    store.write([record(6, "decline", 0.9)])  # 6 was approved first: no alert now either
    assert store.count("alerts") == 1
    assert [(r.transaction_id, r.decision, r.risk_score) for r in replay.stored] == [
        (5, "review", 0.3),
        (6, "approve", 0.01),
    ]  # what the other sinks must publish


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="SQLite and PostgreSQL"):
        AlertStore("mysql+pymysql://x@127.0.0.1/db")
