"""Request and response bodies of the Transaction API.

:class:`TransactionIn` *is* a :class:`fraudrisk.schemas.Transaction` (same fields, ranges and
patterns) made strict for the wire: ids must be JSON integers, the amount a JSON number,
``tx_datetime`` an ISO 8601 string between 2000-01-01 and one day from now (as ingestion), the
derived ``tx_time_*`` fields are not accepted, and a card number may be sent as ``card_number``
(or any name of :data:`~fraudrisk.schemas.CLEAR_CARD_NUMBER_FIELDS`, any case): it is held as a
secret and replaced by ``card_token`` before the transaction goes anywhere.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from fraudrisk.api.tokens import normalise_pan
from fraudrisk.data.parsing import CLEAR_PAN, MIN_TX_DATETIME
from fraudrisk.schemas import CHANNELS, CLEAR_CARD_NUMBER_FIELDS, Transaction
from fraudrisk.vocab import Decision

#: How far in the future a transaction time may be (clock skew), as in batch ingestion.
MAX_FUTURE = dt.timedelta(days=1)
#: The field a card number is held in, whatever name the client used.
PAN_FIELD = "card_number"
Mode = Literal["sync", "async"]

_EXAMPLE: JsonDict = {
    "transaction_id": 1754155,
    "tx_datetime": "2018-09-30T23:59:57",
    "customer_id": 2120,
    "terminal_id": 6438,
    "tx_amount": 57.25,
    "currency": "EUR",
    "channel": "pos",
    "card_number": "4111111111111111",
}


class TransactionIn(Transaction):
    """One transaction as a client sends it."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [_EXAMPLE]}
    )

    tx_datetime: dt.datetime = Field(
        description="ISO 8601; naive = UTC, an offset is converted to UTC. From 2000-01-01 (and "
        "the lake epoch) to one day from now."
    )
    channel: str | None = Field(
        None, description="Channel.", json_schema_extra={"enum": [*sorted(CHANNELS), None]}
    )
    tx_time_seconds: SkipJsonSchema[None] = Field(None, exclude=True)
    tx_time_days: SkipJsonSchema[None] = Field(None, exclude=True)
    card_number: SecretStr | None = Field(
        None,
        description="Clear card number (also accepted as "
        + ", ".join(sorted(CLEAR_CARD_NUMBER_FIELDS - {PAN_FIELD}))
        + "): replaced by card_token at the edge, never stored, logged or echoed.",
        json_schema_extra={"writeOnly": True},
    )

    @model_validator(mode="before")
    @classmethod
    def _one_card_number_field(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names = [key for key in data if str(key).lower() in CLEAR_CARD_NUMBER_FIELDS]
        if len(names) > 1:
            shown = sorted({str(n).lower() for n in names})
            raise ValueError(f"several card number fields {shown}: send one")
        if names and names[0] != PAN_FIELD:
            data = dict(data)
            data[PAN_FIELD] = data.pop(names[0])
        return data

    @field_validator("transaction_id", "customer_id", "terminal_id", mode="before")
    @classmethod
    def _json_integer(cls, value: Any) -> Any:
        if type(value) is not int:
            raise ValueError("must be a JSON integer")
        return value

    @field_validator("tx_amount", mode="before")
    @classmethod
    def _json_number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a JSON number")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer beyond any float
            finite = False
        if not finite:
            raise ValueError("must be finite")
        return value

    @field_validator("tx_time_seconds", "tx_time_days", mode="before")
    @classmethod
    def _derived(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError("derived from tx_datetime by the platform: do not send it")
        return value

    @field_validator("tx_datetime", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date-time string")
        return value

    @field_validator("tx_datetime")
    @classmethod
    def _sane_time(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is not None:
            try:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            except OverflowError:  # year 1 or 9999 shifted out of range
                value = dt.datetime.min if value.year < 2000 else dt.datetime.max
        if value < MIN_TX_DATETIME:
            raise ValueError(f"before {MIN_TX_DATETIME.date()}")
        newest = dt.datetime.now(dt.UTC).replace(tzinfo=None) + MAX_FUTURE
        if value > newest:
            raise ValueError("more than 1 day in the future")
        return value

    @field_validator("card_token")
    @classmethod
    def _not_a_pan(cls, value: str | None) -> str | None:
        if value is not None and re.match(CLEAR_PAN, value):
            raise ValueError("looks like a clear card number: send it as card_number instead")
        return value

    @field_validator(PAN_FIELD)
    @classmethod
    def _valid_pan(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else SecretStr(normalise_pan(value.get_secret_value()))

    @model_validator(mode="after")
    def _token_or_number(self) -> TransactionIn:
        if self.card_number is not None and self.card_token is not None:
            raise ValueError("send card_number or card_token, not both")
        return self


class TransactionBatchIn(BaseModel):
    """Several transactions in one request (at most ``FRAUDRISK_API__MAX_BATCH``; more = 413)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"transactions": [_EXAMPLE]}]}
    )

    transactions: list[TransactionIn] = Field(min_length=1, description="Unique transaction ids.")


class ScoreResult(BaseModel):
    """The decision on one transaction (sync mode)."""

    transaction_id: int
    risk_score: float = Field(ge=0, le=1, description="Calibrated fraud probability.")
    decision: Decision
    reason_codes: list[dict[str, Any]] = Field(
        description="Top features pushing the score up ({feature, value, contribution}) or, "
        "under the fallback rules, the rules that fired ({rule, limit})."
    )
    model_name: str
    model_version: str = Field(description="Registry version; empty under the fallback rules.")
    variant: str = Field(description="Which variant answered: champion, canary, a, b.")
    fallback: bool = Field(description="Decided by the fallback rules (no model score).")
    policy_version: int | None = Field(
        None,
        description="The decision policy version that decided; null when none did (the "
        "model's thresholds, or the fallback rules).",
    )


class BatchScoreResult(BaseModel):
    """The decisions on a batch, in request order (sync mode)."""

    results: list[ScoreResult]


class Accepted(BaseModel):
    """A transaction acknowledged by Kafka (async mode): it will be scored by the stream scorer."""

    transaction_id: int
    status: Literal["accepted"] = "accepted"


class BatchAccepted(BaseModel):
    """A batch acknowledged by Kafka, every transaction of it (async mode)."""

    transaction_ids: list[int]
    status: Literal["accepted"] = "accepted"


class FieldError(BaseModel):
    """What is wrong with one field (never its value)."""

    field: str = Field(description="Path of the field, e.g. transactions[2].tx_amount.")
    message: str


class Problem(BaseModel):
    """Every error response: HTTP status, a title, what happened, and field errors if any."""

    status: int
    title: str
    detail: str
    errors: list[FieldError] = []


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Whether the API can take traffic, and in which state."""

    ready: bool
    model: Literal["loaded", "rules_only", "not_loaded"]
    model_versions: list[str]
    kafka: Literal["ok", "unreachable", "disabled"]
    stream_relay: Literal["assigned", "starting", "stopped", "disabled"]
    card_tokens: bool = Field(description="Whether card numbers can be tokenised (key set).")
    alert_store: Literal["ok", "spooling", "disabled"] = Field(
        "disabled",
        description="Sync mode's writes to the alert store: ok; spooling = the store is down "
        "or the spool waits for a replay (requests are answered either way); disabled.",
    )


class StreamEvent(BaseModel):
    """One message pushed to WebSocket subscribers."""

    type: Literal["score", "alert"]
    source: Literal["api", "stream"] = Field(
        description="api = a sync decision of this API; stream = the stream scorer (Kafka)."
    )
    data: dict[str, Any] = Field(
        description="The score: transaction_id, customer_id, risk_score, decision, "
        "reason_codes, model_version, variant, fallback."
    )
