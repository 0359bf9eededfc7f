"""A chargeback feed: labels from the card issuer, and cases for the frauds that never alerted.

Each row of the feed labels one transaction (``transaction_id``, ``tx_fraud``; optional
``labelled_at``, else the ingestion time). The labels go to the lake's labels table (source
``chargeback``) and, by setting, the ``labels`` topic. A fraud no case holds — one the model
approved — opens a case in the **missed-fraud** queue, with the transaction as the store
scored it (or as the feed describes it: ``customer_id``, ``tx_amount``, ``tx_datetime``), so
analysts can see why it was missed. Ingesting the same feed again opens nothing new.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fraudrisk.alerts.store import METADATA as ALERT_STORE_TABLES
from fraudrisk.alerts.store import SCORES
from fraudrisk.cases.ingest import case_alert_row, sync_queues, system_event
from fraudrisk.cases.lifecycle import Status
from fraudrisk.cases.routing import RoutingRules, load_rules
from fraudrisk.cases.tables import CASE_ALERTS, CASE_EVENTS, CASES, QUEUES
from fraudrisk.data.labels import LabelMessage, LabelsTable, label_messages
from fraudrisk.identity import audit
from fraudrisk.identity.audit import Actor
from fraudrisk.io.database import utcnow
from fraudrisk.vocab import APPROVE

MISSED_FRAUD_QUEUE = "missed-fraud"
CHARGEBACK = "chargeback"
_DESCRIBED = ("customer_id", "tx_amount", "tx_datetime")


@dataclass(frozen=True)
class ChargebacksIngested:
    """What one feed did."""

    labels: int
    frauds: int
    missed_cases: int
    undescribed: list[int]


def read_feed(path: str) -> pd.DataFrame:
    """A chargeback feed from CSV or Parquet.

    Raises:
        ValueError: If the file lacks ``transaction_id`` or ``tx_fraud``.
    """
    frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    missing = {"transaction_id", "tx_fraud"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: a chargeback feed needs the columns {sorted(missing)}")
    if "tx_datetime" in frame.columns:
        frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"])
    if "labelled_at" in frame.columns:
        frame["labelled_at"] = pd.to_datetime(frame["labelled_at"])
    return frame


class ChargebackIngester:
    """Labels from a feed, and missed-fraud cases."""

    def __init__(
        self,
        engine: Engine,
        table: LabelsTable,
        send: Callable[[Sequence[LabelMessage]], int] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        rules: RoutingRules | None = None,
    ) -> None:
        """Labels to ``table`` (and ``send``); cases in the routing file's missed-fraud queue."""
        self.engine, self.table, self.send, self.clock = engine, table, send, clock
        ALERT_STORE_TABLES.create_all(engine)  # no scorer may have written yet
        sync_queues(engine, rules or load_rules())

    def ingest(self, actor: Actor, feed: pd.DataFrame) -> ChargebacksIngested:
        """Publish the feed's labels and open a case for each fraud no case holds.

        The labels are written first (the table, then the topic): if either fails, nothing is
        opened and the same feed can simply be ingested again (a label given twice is the same
        label; readers keep one per transaction).

        Raises:
            ValueError: If a row is not a valid label (the first problems are named), or the
                routing file has no missed-fraud queue.
        """
        now = self.clock()
        messages = [
            m.model_copy(update={"source": CHARGEBACK})
            for m in label_messages(feed, labelled_at=now)
        ]
        self.table.append(messages)
        if self.send is not None and messages:
            self.send(messages)
        frauds = feed[feed["tx_fraud"] == 1]
        with self.engine.begin() as connection:
            queue_id, sla_minutes = _missed_queue(connection)
            opened, undescribed = self._missed(connection, frauds, queue_id, now, sla_minutes)
            audit.record(
                connection,
                actor,
                "labels.ingest",
                "labels",
                CHARGEBACK,
                {"labels": len(messages), "missed_cases": opened},
            )
        return ChargebacksIngested(len(messages), len(frauds), opened, undescribed)

    def _missed(
        self,
        connection: Connection,
        frauds: pd.DataFrame,
        queue_id: int,
        now: dt.datetime,
        sla: int,
    ) -> tuple[int, list[int]]:
        ids = list(dict.fromkeys(int(i) for i in frauds["transaction_id"]))
        cased = set(
            connection.execute(
                sa.select(CASE_ALERTS.c.transaction_id).where(CASE_ALERTS.c.transaction_id.in_(ids))
            ).scalars()
        )
        scored = {
            row.transaction_id: row._mapping
            for row in connection.execute(sa.select(SCORES).where(SCORES.c.transaction_id.in_(ids)))
        }
        described = frauds.drop_duplicates("transaction_id", keep="last").set_index(
            "transaction_id"
        )
        opened, undescribed = 0, []
        for tx_id in ids:
            if tx_id in cased:
                continue
            facts = _facts(tx_id, scored.get(tx_id), described)
            if facts is None:
                undescribed.append(tx_id)
                continue
            _open_missed(connection, facts, queue_id, now, sla)
            cased.add(tx_id)
            opened += 1
        return opened, undescribed


def _facts(tx_id: int, scored: Any, described: pd.DataFrame) -> dict[str, Any] | None:
    """The transaction as scored, else as the feed describes it (None if neither can)."""
    if scored is not None:
        return dict(scored)
    if not set(_DESCRIBED) <= set(described.columns):
        return None
    row: Any = described.loc[tx_id]
    if row[list(_DESCRIBED)].isna().any():  # the feed describes it only in part
        return None
    terminal = row["terminal_id"] if "terminal_id" in described.columns else None
    return {
        "transaction_id": tx_id,
        "customer_id": int(row["customer_id"]),
        "terminal_id": -1 if terminal is None or pd.isna(terminal) else int(terminal),
        "tx_datetime": pd.Timestamp(row["tx_datetime"]).to_pydatetime(),
        "tx_amount": float(row["tx_amount"]),
        "risk_score": 0.0,
        "decision": APPROVE,
        "reason_codes": "[]",
        "model_version": "",
        "variant": "",
    }


def _missed_queue(connection: Connection) -> tuple[int, int]:
    """The missed-fraud queue's id and SLA (made from the routing file by ``sync_queues``)."""
    found = connection.execute(
        sa.select(QUEUES.c.id, QUEUES.c.sla_minutes).where(QUEUES.c.name == MISSED_FRAUD_QUEUE)
    ).one_or_none()
    if found is None:
        raise ValueError(
            f"the routing file has no {MISSED_FRAUD_QUEUE!r} queue: add it to its queues"
        )
    return int(found.id), int(found.sla_minutes)


def _open_missed(
    connection: Connection, tx: dict[str, Any], queue_id: int, now: dt.datetime, sla: int
) -> None:
    case = {
        "customer_id": tx["customer_id"],
        "queue_id": queue_id,
        "status": Status.NEW.value,
        "priority": tx["tx_amount"],  # the whole amount was lost
        "amount_total": tx["tx_amount"],
        "max_risk": tx["risk_score"],
        "alert_count": 1,
        "decision": tx["decision"],
        "model_version": tx["model_version"],
        "variant": tx["variant"],
        "routing_rule": CHARGEBACK,
        "opened_at": now,
        "last_alert_at": tx["tx_datetime"],
        "due_at": now + dt.timedelta(minutes=sla),
        "updated_at": now,
        "version": 1,
    }
    case_id = connection.execute(CASES.insert().values(**case).returning(CASES.c.id)).scalar_one()
    member = case_alert_row(case_id, SimpleNamespace(**tx), alerted_at=now)
    connection.execute(CASE_ALERTS.insert().values(**member))
    data = {"rule": CHARGEBACK, "transaction_id": tx["transaction_id"]}
    connection.execute(CASE_EVENTS.insert().values(**system_event(case_id, now, "opened", data)))
