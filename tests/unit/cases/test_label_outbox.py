"""A resolution's labels are never lost: kept in its transaction, delivered, retried until taken.

The labels table and the topic fail in turn (an object store or broker down); the resolution
still commits and answers, its labels wait in the outbox with the error, and the background
round delivers them once the destination is back — once. The negative control resolves with
an outbox that does not keep the labels in the transaction (publishing after commit only, as
before the outbox): the same failure loses them, and the same check sees it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.unit.cases.case_doubles import DAY, CaseWorld, alert

from fraudrisk.cases.labels import LabelOutbox
from fraudrisk.cases.tables import CASES, LABEL_OUTBOX
from fraudrisk.data.labels import LabelMessage, LabelsTable
from fraudrisk.identity.roles import Role
from fraudrisk.io.storage import open_storage


class Flaky:
    """A destination that is down until ``up`` is set, then records what it takes."""

    def __init__(self) -> None:
        self.up = False
        self.taken: list[LabelMessage] = []

    def __call__(self, labels: Sequence[LabelMessage]) -> int:
        if not self.up:
            raise ConnectionError("broker 127.0.0.1:9 unreachable")
        self.taken.extend(labels)
        return len(labels)


class FlakyTable(LabelsTable):
    """The labels table on a store that is down until ``up`` is set."""

    up = False

    def append(self, messages: Sequence[LabelMessage]) -> int:
        if not self.up:
            raise OSError("object store unavailable")
        return super().append(messages)


def table_at(path: Path) -> FlakyTable:
    return FlakyTable(open_storage(str(path)))


def resolve(world: CaseWorld, customer: int, disposition: str = "confirmed-fraud") -> int:
    with world.engine.connect() as connection:
        case_id = connection.execute(
            sa.select(CASES.c.id).where(CASES.c.customer_id == customer)
        ).scalar_one()
    with TestClient(world.app()) as client:
        answer = client.post(
            f"/v1/cases/{case_id}/actions",
            json={"action": "resolve", "disposition": disposition},
            headers=world.bearer("ana"),
        )
    assert answer.status_code == 200, answer.text  # the destinations being down fails nothing
    return int(case_id)


@pytest.fixture()
def cases(fresh: CaseWorld) -> CaseWorld:
    fresh.store.write([alert(1, 1, DAY), alert(2, 1, DAY + dt.timedelta(hours=1)), alert(3, 2)])
    fresh.ingester().ingest_all()
    fresh.add_user("ana", Role.ANALYST, ["general"])
    return fresh


def delivered(table: LabelsTable) -> set[int]:
    """Transaction ids in the labels table (the check of every test here)."""
    table.up = True  # type: ignore[attr-defined]
    frame = table.read(dt.datetime(2100, 1, 1))
    return set(frame["transaction_id"].astype(int))


def test_labels_wait_in_the_outbox_while_the_table_is_down_then_arrive_once(
    cases: CaseWorld, tmp_path: Path
) -> None:
    table, topic = table_at(tmp_path / "labels"), Flaky()
    outbox = LabelOutbox(cases.engine, table, topic, cases.clock)
    cases.work.outbox = outbox
    case_id = resolve(cases, customer=1)
    assert outbox.pending() == 1
    with cases.engine.connect() as connection:
        entry = connection.execute(sa.select(LABEL_OUTBOX)).one()
    assert entry.case_id == case_id and entry.attempts == 1
    assert "OSError: object store unavailable" in entry.last_error
    assert outbox.deliver().failed == 1  # still down: kept, attempts counted
    table.up = True
    assert outbox.deliver().failed == 1  # the table took them; the broker is still down
    assert outbox.pending() == 1 and topic.taken == []
    topic.up = True
    assert outbox.deliver().delivered == 1 and outbox.pending() == 0
    assert outbox.deliver().delivered == 0  # nothing left: no repeat
    assert delivered(table) == {1, 2} and sorted(m.transaction_id for m in topic.taken) == [1, 2]
    assert {m.tx_fraud for m in topic.taken} == {1}
    assert {m.labelled_by for m in topic.taken} == {"ana"}
    assert len(table.read(dt.datetime(2100, 1, 1))) == 2  # one label per transaction


def test_all_up_the_labels_go_out_with_the_resolution(cases: CaseWorld, tmp_path: Path) -> None:
    table, topic = table_at(tmp_path / "labels"), Flaky()
    table.up = topic.up = True
    outbox = LabelOutbox(cases.engine, table, topic, cases.clock)
    cases.work.outbox = outbox
    resolve(cases, customer=2, disposition="legitimate")
    assert outbox.pending() == 0 and [m.tx_fraud for m in topic.taken] == [0]
    resolve(cases, customer=1, disposition="inconclusive")  # no label: nothing kept
    assert delivered(table) == {3}
    with cases.engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(LABEL_OUTBOX)).scalar() == 1
        )


def test_negative_control_publishing_after_commit_only_loses_them(
    cases: CaseWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = table_at(tmp_path / "labels")
    outbox = LabelOutbox(cases.engine, table, None, cases.clock)
    sent_after_commit: list[int] = []

    def publish_after_commit(self, connection, resolution):  # type: ignore[no-untyped-def]
        sent_after_commit.append(resolution.case_id)  # not kept: a failure now is final
        labels = [LabelMessage(transaction_id=t, tx_fraud=1) for t in resolution.transaction_ids]
        with contextlib.suppress(OSError):  # what a best-effort publisher does
            table.append(labels)
        return None

    monkeypatch.setattr(LabelOutbox, "add", publish_after_commit)
    cases.work.outbox = outbox
    resolve(cases, customer=1)
    outbox.deliver()
    assert sent_after_commit and delivered(table) == set()  # lost: the check fails on it


def test_metrics_show_the_undelivered_labels_and_the_queues(
    cases: CaseWorld, tmp_path: Path
) -> None:
    table = table_at(tmp_path / "labels")
    outbox = LabelOutbox(cases.engine, table, None, cases.clock)
    cases.work.outbox = outbox
    cases.add_user("max", Role.MLOPS_ENGINEER)
    resolve(cases, customer=1)
    cases.clock.advance(minutes=5)

    def scrape() -> str:
        with TestClient(cases.app()) as client:
            answer = client.get("/metrics", headers=cases.bearer("max"))
        assert answer.status_code == 200, answer.text
        return answer.text

    waiting = scrape()
    assert "fraudrisk_cases_labels_undelivered 1.0" in waiting
    assert "fraudrisk_cases_labels_undelivered_oldest_age_seconds 300.0" in waiting
    assert 'fraudrisk_cases_open{queue="general"} 1.0' in waiting  # customer 2's case
    assert 'fraudrisk_cases_resolved{disposition="confirmed-fraud",queue="general"} 1.0' in waiting
    table.up = True
    outbox.deliver()
    assert "fraudrisk_cases_labels_undelivered 0.0" in scrape()
