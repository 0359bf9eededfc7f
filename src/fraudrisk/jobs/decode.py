"""Decode a batch of Kafka transaction messages: valid rows, and rejects with their reason.

Each message is one JSON object with the lake's columns (any subset of the optional ones). The
values are checked by the ingestion validator (:func:`fraudrisk.data.validation.validate_batch`),
so a stream, a file and the API accept exactly the same transactions. A message that is not a
JSON object, carries unknown fields or a clear card-number field is rejected on its own; a card
number is removed from the payload kept for the dead-letter queue, never forwarded.

The validator takes columns as read, typed or text. A column whose JSON values all have the
column's own type (integers for ids, numbers for amounts, strings for text and times) goes to it
typed, in one Arrow conversion; any other column goes as text, value by value, as a CSV file
would (so ``"12"`` or ``true`` get the same verdict as in a file).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa

from fraudrisk.cards import redact_card_numbers_bytes
from fraudrisk.data.validation import REJECT_REASON, SOURCE_ROW, validate_batch
from fraudrisk.schemas import CLEAR_CARD_NUMBER_FIELDS, LAKE_SCHEMA, SCORER_COLUMNS
from fraudrisk.scoring.vectors import TransactionBatch

_KNOWN = frozenset(LAKE_SCHEMA.names)
_COLUMNS = tuple(name for name in LAKE_SCHEMA.names if name in SCORER_COLUMNS)
#: Columns the validator needs even when every message lacks them (each row is then rejected).
_REQUIRED = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount")


def _json_form(kind: pa.DataType) -> tuple[tuple[type, ...], pa.DataType]:
    """The JSON value types a lake column takes as is, and the Arrow type they convert to."""
    if pa.types.is_integer(kind):
        return (int,), kind
    if pa.types.is_floating(kind):
        return (int, float), kind
    return (str,), pa.string()  # text, and times as ISO 8601 text


#: Per column: Python types taken as is (exact types: a bool is not an int here), Arrow type.
_TYPED = {name: _json_form(LAKE_SCHEMA.field(name).type) for name in _COLUMNS}


@dataclass(frozen=True)
class Reject:
    """A message that cannot be scored: its position in the batch, payload and reason."""

    index: int
    payload: bytes
    reason: str


@dataclass(frozen=True)
class Decoded:
    """The valid transactions of a batch (lake schema), which message each came from, rejects."""

    rows: pa.Table
    indices: list[int]
    rejects: list[Reject]

    def batch(self) -> TransactionBatch:
        """The valid rows as a scoring batch."""
        stamps = self.rows["tx_datetime"].to_numpy().astype("datetime64[s]").astype(np.int64)
        return TransactionBatch(
            transaction_id=self.rows["transaction_id"].to_numpy().astype(np.int64),
            seconds=stamps,
            customer_id=self.rows["customer_id"].to_numpy().astype(np.int64),
            terminal_id=self.rows["terminal_id"].to_numpy().astype(np.int64),
            tx_amount=self.rows["tx_amount"].to_numpy().astype(np.float64),
        )


def decode(values: list[bytes | None], epoch: dt.date) -> Decoded:
    """Parse and validate message values (JSON objects), keeping each reject's reason.

    Args:
        values: The message values, in consumption order.
        epoch: Day 0 of the lake (for ``tx_time_seconds``).

    Returns:
        Valid rows with the index of their message, and the rejected messages.
    """
    objects: dict[int, dict[str, object]] = {}
    rejects: list[Reject] = []
    for index, value in enumerate(values):
        parsed, reject = _parse(index, value)
        if reject is not None:
            rejects.append(reject)
        elif parsed is not None:
            objects[index] = parsed
    if not objects:
        return Decoded(LAKE_SCHEMA.empty_table(), [], rejects)
    checked = validate_batch(
        _columns_table(list(objects.values())),
        epoch=epoch,
        source_rows=pa.array(list(objects), pa.int64()),
    )
    for row in checked.rejected.select([SOURCE_ROW, REJECT_REASON]).to_pylist():
        index = int(row[SOURCE_ROW])
        payload = redact_card_numbers_bytes(values[index] or b"")  # e.g. a PAN as card_token
        rejects.append(Reject(index, payload, str(row[REJECT_REASON])))
    rejected = {r.index for r in rejects}
    indices = [index for index in objects if index not in rejected]
    return Decoded(checked.valid, indices, sorted(rejects, key=lambda r: r.index))


def _parse(index: int, value: bytes | None) -> tuple[dict[str, object] | None, Reject | None]:
    if value is None:
        return None, Reject(index, b"", "empty message (no value)")
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None, Reject(index, value, "not JSON")
    if not isinstance(parsed, dict):
        return None, Reject(index, value, "not a JSON object")
    if parsed.keys() <= _KNOWN:  # the usual case, in one set operation
        return parsed, None
    clear = sorted(k for k in parsed if str(k).lower() in CLEAR_CARD_NUMBER_FIELDS)
    if clear:
        kept = orjson.dumps({k: v for k, v in parsed.items() if k not in clear})
        return None, Reject(
            index,
            kept,
            f"clear card number field {clear[0]!r} (value removed); send card_token, a keyed token",
        )
    unknown = sorted(str(k) for k in parsed if k not in _KNOWN)
    if unknown:
        return None, Reject(index, value, f"unknown fields {unknown}")
    return parsed, None


def _columns_table(objects: list[dict[str, object]]) -> pa.Table:
    """The known columns of the objects, typed where every value allows it, else as text.

    An optional column no object has is left out (the validator's nulls); a required one is
    kept, null, so that each row is rejected for it.
    """
    columns = {}
    for name in _COLUMNS:
        values = [o.get(name) for o in objects]
        if name in _REQUIRED or values.count(None) < len(values):
            columns[name] = _column(name, values)
    return pa.table(columns)


def _column(name: str, values: list[object]) -> pa.Array:
    kinds, arrow = _TYPED[name]
    if all(value is None or type(value) in kinds for value in values):
        try:
            return pa.array(values, arrow)
        except (pa.ArrowException, OverflowError):  # e.g. an integer beyond int64: as text
            pass
    return pa.array([_text(value) for value in values], pa.string())


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):  # JSON true/false is not a number here
        return "true" if value else "false"
    return str(value)
