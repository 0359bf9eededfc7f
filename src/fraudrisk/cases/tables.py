"""The case tables (created by the migrations of :mod:`fraudrisk.io.database`).

A case gathers the alerts of one customer (``case_alerts``, keyed by transaction id: an alert
joins exactly one case, whatever replays); each change is an event on its timeline
(``case_events``); ``version`` detects concurrent edits.
"""

from __future__ import annotations

import sqlalchemy as sa

from fraudrisk.identity import tables as _identity  # noqa: F401  (users: foreign keys)
from fraudrisk.io.database import APP_METADATA

QUEUES = sa.Table(
    "queues",
    APP_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("sla_minutes", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
QUEUE_MEMBERS = sa.Table(
    "queue_members",
    APP_METADATA,
    sa.Column("queue_id", sa.Integer, sa.ForeignKey("queues.id"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
)
CASES = sa.Table(
    "cases",
    APP_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("queue_id", sa.Integer, sa.ForeignKey("queues.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("disposition", sa.String(16)),
    sa.Column("assignee_id", sa.Integer, sa.ForeignKey("users.id"), index=True),
    sa.Column("priority", sa.Float, nullable=False),
    sa.Column("amount_total", sa.Float, nullable=False),
    sa.Column("max_risk", sa.Float, nullable=False),
    sa.Column("alert_count", sa.Integer, nullable=False),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("variant", sa.String(32), nullable=False),
    sa.Column("policy_version", sa.String(32)),
    sa.Column("routing_rule", sa.String(64), nullable=False),
    sa.Column("opened_at", sa.DateTime, nullable=False),
    sa.Column("last_alert_at", sa.DateTime, nullable=False),
    sa.Column("due_at", sa.DateTime, nullable=False),
    sa.Column("snoozed_until", sa.DateTime),
    sa.Column("resolved_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)
#: A queue's page in its order (priority first, then id) straight from the index.
sa.Index("ix_cases_queue_priority", CASES.c.queue_id, CASES.c.priority.desc(), CASES.c.id)
CASE_ALERTS = sa.Table(
    "case_alerts",
    APP_METADATA,
    sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("customer_id", sa.BigInteger, nullable=False),
    sa.Column("terminal_id", sa.BigInteger, nullable=False),
    sa.Column("tx_datetime", sa.DateTime, nullable=False),
    sa.Column("tx_amount", sa.Float, nullable=False),
    sa.Column("risk_score", sa.Float, nullable=False),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("reason_codes", sa.Text, nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("variant", sa.String(32), nullable=False),
    sa.Column("alerted_at", sa.DateTime, nullable=False),
)
CASE_EVENTS = sa.Table(
    "case_events",
    APP_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)
#: Labels of a resolution, written in its transaction, delivered to the labels table and the
#: topic after commit (and again by the background round until both took them).
LABEL_OUTBOX = sa.Table(
    "label_outbox",
    APP_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("stored_at", sa.DateTime),
    sa.Column("sent_at", sa.DateTime),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
)
#: The pending deliveries, oldest first.
sa.Index("ix_label_outbox_pending", LABEL_OUTBOX.c.stored_at, LABEL_OUTBOX.c.sent_at)
