"""Decoding Kafka transaction messages: typed columns give the verdicts of text columns."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from tests.support.stream import BAD_MESSAGES

from fraudrisk.data.validation import REJECT_REASON, SOURCE_ROW, validate_batch
from fraudrisk.jobs.decode import _COLUMNS, _columns_table, _text, decode

EPOCH = dt.date(2018, 4, 1)


def message(tx_id: int, **fields: object) -> bytes:
    body: dict[str, object] = {
        "transaction_id": tx_id,
        "tx_datetime": "2018-05-01T10:00:00",
        "customer_id": 7,
        "terminal_id": 9,
        "tx_amount": 12.5,
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


#: Messages a CSV-like (all text) decoding would judge too: mistyped, missing, odd values.
TRICKY = [
    message(1),
    message(2, transaction_id="2"),  # a numeric string, as a CSV cell
    message(3, tx_amount=5),  # an integer amount
    message(4, tx_amount=True),  # a JSON boolean is not a number
    message(5, customer_id=7.0),  # a float id
    message(6, terminal_id=2**70),  # beyond int64
    message(7, tx_amount=-1),
    message(8, tx_datetime=1525168800),  # a number for a time
    message(9, tx_datetime="2018-13-01T00:00:00"),
    message(10, currency="EUR", channel="ecom"),
    message(11, currency="euro"),
    message(12, customer_id=...),  # missing
    message(13, tx_amount=None),
    message(14, card_token="tok_abc"),
    message(15, tx_amount=1e308),
    message(16, tx_time_seconds=2_628_000),
]


def text_verdicts(values: list[bytes]) -> tuple[list[dict[str, object]], list[tuple[int, str]]]:
    """The reference: every known column as text, the way the decoder first did it."""
    objects = [json.loads(v) for v in values]
    table = pa.table(
        {name: pa.array([_text(o.get(name)) for o in objects], pa.string()) for name in _COLUMNS}
    )
    checked = validate_batch(table, epoch=EPOCH, source_rows=pa.array(range(len(values))))
    rejected = checked.rejected.select([SOURCE_ROW, REJECT_REASON]).to_pylist()
    return checked.valid.to_pylist(), [(r[SOURCE_ROW], r[REJECT_REASON]) for r in rejected]


def test_typed_columns_judge_every_message_as_text_columns_do() -> None:
    expected_valid, expected_rejects = text_verdicts(TRICKY)
    decoded = decode(TRICKY, EPOCH)
    assert decoded.rows.to_pylist() == expected_valid
    assert [r.index for r in decoded.rejects] == [index for index, _ in expected_rejects]
    assert len(expected_valid) >= 5 and len(expected_rejects) >= 6  # the set tests both kinds
    assert decoded.indices == sorted(set(range(len(TRICKY))) - {r.index for r in decoded.rejects})


def test_well_typed_messages_go_to_the_validator_typed() -> None:
    objects = [json.loads(message(i)) for i in range(3)]
    table = _columns_table(objects)
    assert table.schema.field("transaction_id").type == pa.int64()
    assert table.schema.field("tx_amount").type == pa.float64()
    assert "currency" not in table.column_names  # absent everywhere: the validator's nulls
    mixed = _columns_table([*objects, {"transaction_id": "3", "tx_amount": True}])
    assert mixed.schema.field("transaction_id").type == pa.string()
    assert mixed["tx_amount"].to_pylist()[-1] == "true"


def test_bad_messages_are_rejected_with_their_reason_and_no_card_number() -> None:
    values = [message(1), *BAD_MESSAGES, None, message(2)]
    decoded = decode(values, EPOCH)
    assert decoded.indices == [0, len(values) - 1]
    reasons = {r.index: r.reason for r in decoded.rejects}
    assert reasons[1] == "not JSON" and reasons[2] == "not a JSON object"
    assert "clear card number field 'pan'" in reasons[3]
    assert reasons[4].startswith("transaction_id") and reasons[5].startswith("tx_amount")
    assert reasons[6] == "unknown fields ['colour']"
    assert reasons[len(values) - 2] == "empty message (no value)"
    assert all(b"4111111111111111" not in r.payload for r in decoded.rejects)


def test_a_repeated_transaction_id_in_one_batch_is_rejected_once() -> None:
    decoded = decode([message(1), message(1), message(2)], EPOCH)
    assert decoded.indices == [0, 2]
    assert [r.index for r in decoded.rejects] == [1]
    assert "duplicate" in decoded.rejects[0].reason


@pytest.mark.parametrize("values", [[], [None], [b"[]"]])
def test_a_batch_without_valid_message_decodes_to_no_rows(values: list[bytes | None]) -> None:
    decoded = decode(values, EPOCH)
    assert decoded.rows.num_rows == 0 and decoded.indices == []
    assert len(decoded.rejects) == len(values)
