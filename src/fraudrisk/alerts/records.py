"""What the score and alert store writes: a scored transaction, as a record or a batch of columns.

A transaction is an alert when its decision sends it to review or declines it. The last four
fields say what the decision policy did: the stored version that decided (None: the model's
thresholds or the fallback rules), the queue a route rule picked, the priority factor of its
raise_priority rules and the rules that fired (JSON). A batch is
written in bulk as columns (:class:`ScoreColumns`, no object per row); a write reports the rows
that were new and, for a replay, the records stored the first time (first write wins).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fraudrisk.vocab import ALERT_DECISIONS


@dataclass(frozen=True)
class ScoreRecord:
    """One scored transaction, as written to the store."""

    transaction_id: int
    customer_id: int
    terminal_id: int
    tx_datetime: dt.datetime
    tx_amount: float
    risk_score: float
    decision: str
    reason_codes: str
    model_version: str
    variant: str
    fallback: bool
    policy_version: int | None = None
    route: str | None = None
    priority_factor: float = 1.0
    policy_rules: str = "[]"

    @property
    def is_alert(self) -> bool:
        """Whether analysts must see it (sent to review or declined)."""
        return self.decision in ALERT_DECISIONS


@dataclass(frozen=True)
class WriteResult:
    """What one batch write did: new rows (duplicates of earlier writes are not new)."""

    scores: int
    alerts: int
    stored: tuple[ScoreRecord, ...] = ()
    """The records as the store holds them: the batch's, except that a transaction written
    before (a replay) keeps its first record — what every other sink must publish too."""


#: The fields of a record, in :class:`ScoreRecord` order.
RECORD_FIELDS: tuple[str, ...] = tuple(ScoreRecord.__dataclass_fields__)
#: The policy fields (the last ones), and their value when no policy decided.
POLICY_DEFAULTS: dict[str, Any] = {
    "policy_version": None,
    "route": None,
    "priority_factor": 1.0,
    "policy_rules": "[]",
}


@dataclass(frozen=True)
class ScoreColumns:
    """A batch of scored transactions as columns (one list per :class:`ScoreRecord` field).

    The bulk form of a batch: no object per row. ``tx_datetime`` holds naive UTC datetimes.
    The policy columns may be left out (filled with :data:`POLICY_DEFAULTS`).
    """

    transaction_id: list[int]
    customer_id: list[int]
    terminal_id: list[int]
    tx_datetime: list[dt.datetime]
    tx_amount: list[float]
    risk_score: list[float]
    decision: list[str]
    reason_codes: list[str]
    model_version: list[str]
    variant: list[str]
    fallback: list[bool]
    policy_version: list[int | None] = field(default_factory=list)
    route: list[str | None] = field(default_factory=list)
    priority_factor: list[float] = field(default_factory=list)
    policy_rules: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Policy columns left out (empty) are filled with their no-policy value."""
        n = len(self.transaction_id)
        for name, default in POLICY_DEFAULTS.items():
            if n and not getattr(self, name):
                object.__setattr__(self, name, [default] * n)

    def __len__(self) -> int:
        return len(self.transaction_id)

    @classmethod
    def of(cls, records: Sequence[ScoreRecord]) -> ScoreColumns:
        """The columns of records (their times converted to naive UTC)."""
        columns: dict[str, Any] = {n: [getattr(r, n) for r in records] for n in RECORD_FIELDS}
        columns["tx_datetime"] = [_naive_utc(stamp) for stamp in columns["tx_datetime"]]
        return cls(**columns)

    def records(self) -> list[ScoreRecord]:
        """Every row as a record."""
        columns = (getattr(self, name) for name in RECORD_FIELDS)
        return [ScoreRecord(*row) for row in zip(*columns, strict=True)]


@dataclass(frozen=True)
class ColumnsWritten:
    """What a bulk write did: new score and alert rows, and the rows stored before."""

    scores: int
    alerts: int
    earlier: dict[int, ScoreRecord] = field(default_factory=dict)
    """Transactions a previous write already held (a replay), as stored then: first write wins,
    and this is what every other sink must publish for them."""


def _naive_utc(stamp: dt.datetime) -> dt.datetime:
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp
