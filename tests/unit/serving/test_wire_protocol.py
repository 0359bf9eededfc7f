"""V1 and V2 request parsing: valid batches, and precise 400 messages for everything else."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from fraudrisk.serving.wire_protocol import MAX_BATCH, InvalidRequestError, parse_v1, parse_v2

TX = {
    "transaction_id": 7,
    "tx_datetime": "2018-10-01T10:00:00",
    "customer_id": 42,
    "terminal_id": 9,
    "tx_amount": 12.5,
}
TEST_PAN = "4111111111111111"  # the well-known Visa test number


def tensor(name: str, datatype: str, data: list[Any], shape: list[int] | None = None) -> Any:
    return SimpleNamespace(
        name=name, datatype=datatype, data=data, shape=shape if shape is not None else [len(data)]
    )


def v2_inputs(n: int = 2) -> list[Any]:
    return [
        tensor("transaction_id", "INT64", list(range(1, n + 1))),
        tensor("tx_datetime", "BYTES", ["2018-10-01T10:00:00+02:00"] * n),
        tensor("customer_id", "INT64", [42] * n),
        tensor("terminal_id", "INT64", [9] * n),
        tensor("tx_amount", "FP64", [12.5] * n),
    ]


def test_v1_instances_become_a_batch_in_utc_seconds() -> None:
    batch = parse_v1({"instances": [TX, TX | {"transaction_id": 8, "currency": "EUR"}]})
    assert batch.transaction_id.tolist() == [7, 8]
    assert batch.seconds.tolist() == [1538388000, 1538388000]  # naive = UTC
    assert batch.tx_amount.dtype == np.float64


def test_v1_accepts_a_body_sent_without_a_json_content_type() -> None:
    assert len(parse_v1(json.dumps({"instances": [TX]}).encode())) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [TX | {"tx_amount": -1}]}, r"instances\[0\]\.tx_amount: .*greater than"),
        ({"instances": [TX | {"tx_amount": float("inf")}]}, "finite"),
        (
            {"instances": [{k: v for k, v in TX.items() if k != "customer_id"}]},
            r"instances\[0\]\.customer_id: Field required",
        ),
        ({"instances": [TX | {"currency": "euro"}]}, "currency"),
        ({"instances": [TX | {"mystery": 1}]}, "mystery: Extra inputs are not permitted"),
        ({"instances": []}, "no transactions"),
        ({"instances": "nope"}, "expected a JSON object"),
        ([TX], "expected a JSON object"),
        (b"{not json", "not JSON"),
        ({"instances": [1]}, r"instances\[0\]: expected a transaction object"),
    ],
)
def test_v1_rejections_name_the_row_and_field(body: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        parse_v1(body)


def test_a_card_number_is_refused_and_never_echoed() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_v1({"instances": [TX | {"card_number": TEST_PAN}]})
    assert "card_token" in str(caught.value) and TEST_PAN not in str(caught.value)
    with pytest.raises(InvalidRequestError) as caught:
        parse_v1({"instances": [TX | {"card_token": 4111111111111111}]})
    assert TEST_PAN not in str(caught.value)  # validation errors never carry input values


def test_too_large_a_batch_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=f"at most {MAX_BATCH}"):
        parse_v1({"instances": [TX] * (MAX_BATCH + 1)})


def test_v2_tensors_become_a_batch() -> None:
    batch = parse_v2(v2_inputs(3))
    assert batch.transaction_id.tolist() == [1, 2, 3]
    assert batch.seconds.tolist() == [1538380800] * 3  # +02:00 converted to UTC


def test_v2_accepts_n_by_1_shapes_and_bytes_values() -> None:
    inputs = v2_inputs(2)
    inputs[1] = tensor(
        "tx_datetime", "BYTES", [[b"2018-10-01T10:00:00"], [b"2018-10-01T11:00:00"]], shape=[2, 1]
    )
    assert parse_v2(inputs).seconds.tolist() == [1538388000, 1538391600]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda i: i.__setitem__(4, tensor("tx_amount", "INT64", [1, 2])),
            "'tx_amount': datatype INT64 not allowed, expected FP32 or FP64",
        ),
        (
            lambda i: i.__setitem__(2, tensor("customer_id", "INT64", [1, 2], shape=[3])),
            r"'customer_id': shape \[3\] does not match its 2 values",
        ),
        (lambda i: i.__setitem__(3, tensor("terminal_id", "INT64", [1])), "same length"),
        (lambda i: i.pop(0), r"missing inputs: \['transaction_id'\]"),
        (lambda i: i.append(tensor("colour", "BYTES", ["red", "blue"])), "unknown input 'colour'"),
        (lambda i: i.append(tensor("customer_id", "INT64", [1, 2])), "appears twice"),
        (lambda i: i.append(tensor("pan", "BYTES", ["x", "y"])), "never accepted in clear"),
        (
            lambda i: i.__setitem__(4, tensor("tx_amount", "FP64", [1.0, -2.0])),
            "input 'tx_amount' row 1: .*greater than or equal to 0",
        ),
        (
            lambda i: i.__setitem__(1, tensor("tx_datetime", "BYTES", ["x", "2018-10-01"])),
            "input 'tx_datetime' row 0",
        ),
    ],
)
def test_v2_rejections_are_precise(change: Any, message: str) -> None:
    inputs = v2_inputs(2)
    change(inputs)
    with pytest.raises(InvalidRequestError, match=message):
        parse_v2(inputs)
