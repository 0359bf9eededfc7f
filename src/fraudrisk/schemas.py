"""The transaction schema, in one place: pydantic models for one record, Arrow for the lake.

Column names are the handbook's in snake_case. What a scorer may see (:data:`SCORER_COLUMNS`)
is kept apart from the labels (:data:`LABEL_COLUMNS`), which are only known after a delay.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Columns every transaction has, in lake order.
CORE_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
    "tx_amount",
    "tx_time_seconds",
    "tx_time_days",
)
#: Optional fields of real-world feeds (null when a source does not have them).
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "currency",
    "merchant_category",
    "channel",
    "country",
    "card_token",
)
#: Labels: never an input of a scorer; known only after the label delay.
LABEL_COLUMNS: tuple[str, ...] = ("tx_fraud", "tx_fraud_scenario")
#: Everything a scorer may see.
SCORER_COLUMNS: tuple[str, ...] = CORE_COLUMNS + OPTIONAL_COLUMNS
#: Day partition column of the lake (hive style ``dt=YYYY-MM-DD``), derived from tx_datetime.
PARTITION_COLUMN = "dt"

#: Arrow schema of one lake file. tx_datetime is naive UTC at microsecond resolution.
LAKE_SCHEMA = pa.schema(
    [
        pa.field("transaction_id", pa.int64(), nullable=False),
        pa.field("tx_datetime", pa.timestamp("us"), nullable=False),
        pa.field("customer_id", pa.int64(), nullable=False),
        pa.field("terminal_id", pa.int64(), nullable=False),
        pa.field("tx_amount", pa.float64(), nullable=False),
        pa.field("tx_time_seconds", pa.int64(), nullable=False),
        pa.field("tx_time_days", pa.int32(), nullable=False),
        pa.field("currency", pa.string()),
        pa.field("merchant_category", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("country", pa.string()),
        pa.field("card_token", pa.string()),
        pa.field("tx_fraud", pa.int8()),
        pa.field("tx_fraud_scenario", pa.int8()),
    ]
)

#: Channels a transaction may come through.
CHANNELS: frozenset[str] = frozenset({"pos", "ecom", "atm", "moto", "contactless", "recurring"})

# Constraints shared by the pydantic models below and batch validation (fraudrisk.data).
#: Largest id (int64).
MAX_ID = 2**63 - 1
#: ISO 4217 currency code.
CURRENCY_PATTERN = r"^[A-Z]{3}$"
#: ISO 18245 merchant category code.
MERCHANT_CATEGORY_PATTERN = r"^\d{4}$"
#: ISO 3166-1 alpha-2 country code.
COUNTRY_PATTERN = r"^[A-Z]{2}$"
#: Longest card token.
CARD_TOKEN_MAX_LENGTH = 128
#: Field or column names that would carry clear card numbers: refused at every edge.
CLEAR_CARD_NUMBER_FIELDS: frozenset[str] = frozenset(
    {"pan", "card_number", "cardnumber", "card_no", "primary_account_number"}
)
#: Largest fraud scenario number.
FRAUD_SCENARIO_MAX = 127

NonNegativeId = Annotated[int, Field(ge=0, le=MAX_ID)]


class Transaction(BaseModel):
    """One card transaction as a scorer sees it (no labels)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction_id: NonNegativeId
    tx_datetime: datetime
    customer_id: NonNegativeId
    terminal_id: NonNegativeId
    tx_amount: float = Field(ge=0, description="Amount, finite and >= 0 (zero = authorisation).")
    tx_time_seconds: int | None = Field(None, ge=0, description="Seconds since the lake epoch.")
    tx_time_days: int | None = Field(None, ge=0, description="Days since the lake epoch.")
    currency: str | None = Field(None, pattern=CURRENCY_PATTERN, description="ISO 4217 code.")
    merchant_category: str | None = Field(
        None, pattern=MERCHANT_CATEGORY_PATTERN, description="ISO 18245 MCC."
    )
    channel: str | None = Field(None, description=f"One of {sorted(CHANNELS)}.")
    country: str | None = Field(None, pattern=COUNTRY_PATTERN, description="ISO 3166-1 alpha-2.")
    card_token: str | None = Field(
        None, max_length=CARD_TOKEN_MAX_LENGTH, description="Keyed token, never a PAN."
    )

    @field_validator("tx_amount")
    @classmethod
    def _finite_amount(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("tx_amount must be finite")
        return value

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str | None) -> str | None:
        if value is not None and value not in CHANNELS:
            raise ValueError(f"channel must be one of {sorted(CHANNELS)}")
        return value


class DecisionCosts(BaseModel):
    """What each decision costs, in the currency of the transaction amounts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fraud_loss: float = Field(
        100.0, ge=0, description="Loss per missed fraud when no transaction amounts are given."
    )
    use_amount: bool = Field(
        True, description="Use each transaction's amount as its fraud loss when amounts are given."
    )
    review_cost: float = Field(5.0, ge=0, description="Cost of one analyst review (per alert).")
    decline_cost: float = Field(
        20.0, ge=0, description="Cost of declining a genuine transaction (customer friction)."
    )
    review_detection_rate: float = Field(
        1.0, ge=0, le=1, description="Share of reviewed frauds the analysts catch."
    )
    max_review_rate: float | None = Field(
        None, gt=0, le=1, description="Alert budget: the most transactions sent to review (share)."
    )
    n_quantiles: int = Field(200, ge=2, description="Score quantiles tried as thresholds.")


class Thresholds(BaseModel):
    """The chosen thresholds and what they achieve on the data they were chosen on."""

    model_config = ConfigDict(extra="forbid")

    review: float = Field(description="Review when P(fraud) >= this (and below decline).")
    decline: float = Field(description="Decline when P(fraud) >= this; above 1 = never.")
    expected_cost: float = Field(description="Mean cost per transaction under this policy.")
    total_cost: float = Field(description="Total cost over the held-out transactions.")
    review_rate: float = Field(description="Share of transactions sent to review.")
    decline_rate: float = Field(description="Share of transactions declined.")
    recall_at_review: float = Field(description="Share of frauds reviewed or declined.")
    n_transactions: int = Field(description="Held-out transactions the choice was made on.")
    costs: DecisionCosts = Field(description="The costs the thresholds minimise.")
