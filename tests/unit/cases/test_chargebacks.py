"""A chargeback feed: its labels in the labels table, a missed-fraud case per fraud never cased."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from tests.unit.cases.case_doubles import BOOT, DAY, CaseWorld, alert

from fraudrisk.cases.chargebacks import MISSED_FRAUD_QUEUE, ChargebackIngester, read_feed
from fraudrisk.cases.routing import load_rules
from fraudrisk.cases.tables import CASE_ALERTS, CASES, QUEUES
from fraudrisk.data.labels import LabelsTable
from fraudrisk.identity.audit import AuditQuery
from fraudrisk.io.storage import open_storage

FEED = pd.DataFrame(
    {
        "transaction_id": [1, 2, 3, 4, 5],
        "tx_fraud": [1, 1, 1, 1, 0],
        "customer_id": [10, 20, 30, None, 50],
        "tx_amount": [40.0, 80.0, 120.0, None, 5.0],
        "tx_datetime": pd.to_datetime([DAY] * 5),
    }
)


@pytest.fixture()
def feed_world(fresh: CaseWorld, tmp_path: Path) -> tuple[CaseWorld, ChargebackIngester]:
    approved = alert(1, 10, DAY, amount=40.0, risk=0.02, decision="approve")  # scored, no alert
    fresh.store.write([approved, alert(2, 20, DAY, amount=80.0, risk=0.7)])
    fresh.ingester().ingest_all()  # transaction 2 is in a case already
    table = LabelsTable(open_storage(str(tmp_path / "labels")))
    return fresh, ChargebackIngester(fresh.engine, table, clock=fresh.clock)


def missed_cases(world: CaseWorld) -> pd.DataFrame:
    query = (
        sa.select(CASE_ALERTS.c.transaction_id, CASES.c.priority, CASES.c.due_at, CASES.c.opened_at)
        .join(CASES, CASES.c.id == CASE_ALERTS.c.case_id)
        .join(QUEUES, QUEUES.c.id == CASES.c.queue_id)
        .where(QUEUES.c.name == MISSED_FRAUD_QUEUE)
        .order_by(CASE_ALERTS.c.transaction_id)
    )
    with world.engine.connect() as connection:
        return pd.DataFrame(
            connection.execute(query).all(), columns=["tx", "priority", "due", "at"]
        )


def test_frauds_never_cased_open_missed_fraud_cases_once(feed_world) -> None:
    world, ingester = feed_world
    done = ingester.ingest(BOOT, FEED)
    assert (done.labels, done.frauds, done.missed_cases, done.undescribed) == (5, 4, 2, [4])
    cases = missed_cases(world)
    assert cases["tx"].tolist() == [1, 3]  # 1 as scored (approved), 3 as the feed describes it
    assert cases["priority"].tolist() == [40.0, 120.0]  # the whole amount was lost
    sla = {q.name: q.sla_minutes for q in load_rules().queues}[MISSED_FRAUD_QUEUE]
    assert (cases["due"] - cases["at"] == dt.timedelta(minutes=sla)).all()
    again = ingester.ingest(BOOT, FEED)
    assert again.missed_cases == 0 and len(missed_cases(world)) == 2
    labels = ingester.table.read(dt.datetime(2100, 1, 1))
    assert sorted(labels["transaction_id"]) == [1, 2, 3, 4, 5]
    assert set(labels["source"]) == {"chargeback"}
    entries = world.identity.audit.read(AuditQuery(action="labels.ingest"))
    assert [e["change"] for e in entries][-1] == {"labels": 5, "missed_cases": 2}


def test_a_bad_feed_is_refused_before_anything_is_written(feed_world, tmp_path: Path) -> None:
    world, ingester = feed_world
    bad = FEED.assign(tx_fraud=[1, 2, 1, 0, 0])
    with pytest.raises(ValueError, match=r'1 invalid labels, e.g. \["row 2'):
        ingester.ingest(BOOT, bad)
    assert len(missed_cases(world)) == 0
    assert ingester.table.read(dt.datetime(2100, 1, 1)).empty
    path = tmp_path / "feed.csv"
    FEED.drop(columns=["tx_fraud"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="needs the columns \\['tx_fraud'\\]"):
        read_feed(str(path))


def test_routing_without_the_missed_fraud_queue_is_a_clear_error(
    fresh: CaseWorld, tmp_path: Path
) -> None:
    rules = load_rules()
    without = rules.model_copy(
        update={"queues": [q for q in rules.queues if q.name != MISSED_FRAUD_QUEUE]}
    )
    with fresh.engine.begin() as connection:  # a database whose queues came from such a file
        connection.execute(QUEUES.delete().where(QUEUES.c.name == MISSED_FRAUD_QUEUE))
    ingester = ChargebackIngester(
        fresh.engine, LabelsTable(open_storage(str(tmp_path))), rules=without
    )
    with pytest.raises(ValueError, match="no 'missed-fraud' queue"):
        ingester.ingest(BOOT, FEED)
