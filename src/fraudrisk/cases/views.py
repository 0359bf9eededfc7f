"""What a person reads: a case in a list, and the whole case view."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pydantic import BaseModel


class CaseSummary(BaseModel):
    """A case as a queue lists it."""

    id: int
    customer_id: int
    queue: str
    status: str
    disposition: str | None
    assignee: str | None
    priority: float
    amount_total: float
    max_risk: float
    alert_count: int
    decision: str
    opened_at: dt.datetime
    due_at: dt.datetime
    snoozed_until: dt.datetime | None
    resolved_at: dt.datetime | None
    version: int
    sla_breached: bool


class AlertView(BaseModel):
    """One alerted transaction of a case, with the model's reasons."""

    transaction_id: int
    terminal_id: int
    tx_datetime: dt.datetime
    tx_amount: float
    risk_score: float
    decision: str
    model_version: str
    variant: str
    reason_codes: list[dict[str, Any]]


class Reason(BaseModel):
    """A reason code beside the customer's own baseline for that feature."""

    feature: str
    value: float
    contribution: float
    customer_baseline: float | None


class Event(BaseModel):
    """One entry of a case's timeline."""

    at: dt.datetime
    actor: str
    type: str
    data: dict[str, Any]


class Activity(BaseModel):
    """A recent scored transaction of the customer or the terminal."""

    transaction_id: int
    customer_id: int
    terminal_id: int
    tx_datetime: dt.datetime
    tx_amount: float
    risk_score: float
    decision: str


class CaseView(BaseModel):
    """Everything an analyst needs to decide a case."""

    case: CaseSummary
    model_version: str
    variant: str
    policy_version: str | None
    routing_rule: str
    alerts: list[AlertView]
    reasons: list[Reason]
    customer_activity: list[Activity]
    terminal_activity: list[Activity]
    earlier_cases: list[CaseSummary]
    timeline: list[Event]


def parse_reasons(text: str) -> list[dict[str, Any]]:
    """The reason codes stored with an alert (a JSON array), or none if unreadable."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return []
    return [r for r in parsed if isinstance(r, dict)] if isinstance(parsed, list) else []
