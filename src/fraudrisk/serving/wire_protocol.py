"""The scorer's wire contracts: KServe V1 (``instances``) and the V2 Open Inference Protocol.

Requests become a :class:`~fraudrisk.scoring.vectors.TransactionBatch` after every row is
validated by the schema's own :class:`~fraudrisk.schemas.Transaction` model; any error rejects
the request with an :class:`InvalidRequestError` naming the row and field (HTTP 400). Error messages
never echo input values, so a card number sent by mistake is never written back or logged.

V2 contract: one input tensor per transaction field named as the schema's columns
(``transaction_id`` INT64, ``tx_datetime`` BYTES ISO-8601, ``customer_id`` INT64,
``terminal_id`` INT64, ``tx_amount`` FP64, optional fields BYTES), each of shape ``[n]``;
outputs ``risk_score`` FP64, ``decision`` BYTES, ``reason_codes`` BYTES (JSON per row),
``model_version`` BYTES, each ``[n]`` (and ``variant`` BYTES: which model answered;
``policy_version`` INT64: the decision policy version that decided, -1 when none did — the
model's thresholds or the fallback rules). V1 predictions carry ``policy_version`` (null when
none did).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from fraudrisk.schemas import CLEAR_CARD_NUMBER_FIELDS, OPTIONAL_COLUMNS, Transaction
from fraudrisk.scoring.scorer import RowScores
from fraudrisk.scoring.vectors import TransactionBatch

REQUIRED = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount")
INPUT_COLUMNS = (*REQUIRED, "tx_time_seconds", "tx_time_days", *OPTIONAL_COLUMNS)
_INTEGER_TYPES = frozenset(
    {"INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8"}
)
V2_DATATYPES: dict[str, frozenset[str]] = {
    "transaction_id": _INTEGER_TYPES,
    "customer_id": _INTEGER_TYPES,
    "terminal_id": _INTEGER_TYPES,
    "tx_time_seconds": _INTEGER_TYPES,
    "tx_time_days": _INTEGER_TYPES,
    "tx_amount": frozenset({"FP64", "FP32"}),
} | {name: frozenset({"BYTES"}) for name in ("tx_datetime", *OPTIONAL_COLUMNS)}
MAX_BATCH = 10_000
#: The V2 ``policy_version`` of a decision no stored policy version made.
NO_POLICY = -1
_ROWS = TypeAdapter(list[Transaction])


class InvalidRequestError(ValueError):
    """A request the scorer refuses; the message says where and why (HTTP 400)."""


def parse_v1(body: Any) -> TransactionBatch:
    """A V1 ``{"instances": [transaction, ...]}`` body as a batch.

    Raises:
        InvalidRequestError: If the body is not of that shape or any transaction is invalid.
    """
    if isinstance(body, bytes | str):  # sent without a JSON content type
        try:
            body = json.loads(body)
        except ValueError:
            raise InvalidRequestError("the body is not JSON") from None
    if not isinstance(body, Mapping) or not isinstance(body.get("instances"), list):
        raise InvalidRequestError('expected a JSON object {"instances": [transaction, ...]}')
    instances = body["instances"]
    for row, instance in enumerate(instances):
        if not isinstance(instance, Mapping):
            raise InvalidRequestError(f"instances[{row}]: expected a transaction object")
        _refuse_pans(instance.keys(), f"instances[{row}]")
    return _validated(instances, "instances")


def parse_v2(inputs: Sequence[Any]) -> TransactionBatch:
    """V2 input tensors (objects with ``name``, ``datatype``, ``shape``, ``data``) as a batch.

    Raises:
        InvalidRequestError: On unknown, repeated or missing inputs, wrong datatypes or shapes,
            inputs of different lengths, or any invalid transaction.
    """
    names = [str(getattr(tensor, "name", "")) for tensor in inputs]
    _refuse_pans(names, "inputs")
    columns: dict[str, list[Any]] = {}
    for tensor, name in zip(inputs, names, strict=True):
        if name not in V2_DATATYPES:
            raise InvalidRequestError(
                f"unknown input {name!r}; inputs are named {list(INPUT_COLUMNS)}"
            )
        if name in columns:
            raise InvalidRequestError(f"input {name!r} appears twice")
        columns[name] = _tensor_values(tensor, name)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise InvalidRequestError(f"missing inputs: {missing}")
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        sizes = {name: len(values) for name, values in columns.items()}
        raise InvalidRequestError(f"inputs must all have the same length [n]; got {sizes}")
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    return _validated(rows, "inputs")


def _tensor_values(tensor: Any, name: str) -> list[Any]:
    datatype = str(getattr(tensor, "datatype", "")).upper()
    if datatype not in V2_DATATYPES[name]:
        allowed = " or ".join(sorted(V2_DATATYPES[name]))
        raise InvalidRequestError(
            f"input {name!r}: datatype {datatype} not allowed, expected {allowed}"
        )
    shape = list(getattr(tensor, "shape", []) or [])
    data = getattr(tensor, "data", None)
    if isinstance(data, np.ndarray):
        data = data.reshape(-1).tolist()
    if not isinstance(data, list):
        raise InvalidRequestError(f"input {name!r}: data must be a list")
    flat = _flatten(data)
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or shape[0] != len(flat):
        raise InvalidRequestError(
            f"input {name!r}: shape {shape} does not match its {len(flat)} values "
            "(expected [n], one value per transaction)"
        )
    if datatype == "BYTES":
        flat = [v.decode("utf-8") if isinstance(v, bytes) else v for v in flat]
    return flat


def _flatten(data: list[Any]) -> list[Any]:
    if data and all(isinstance(item, list) for item in data):
        return [value for item in data for value in item]
    return data


def _refuse_pans(names: Any, where: str) -> None:
    found = sorted(str(n) for n in names if str(n).lower() in CLEAR_CARD_NUMBER_FIELDS)
    if found:
        raise InvalidRequestError(
            f"{where}: field {found[0]!r} refused — card numbers are never accepted in clear; "
            "send card_token (a keyed token) instead"
        )


def _validated(rows: list[Any], where: str) -> TransactionBatch:
    if not rows:
        raise InvalidRequestError(f"{where}: no transactions")
    if len(rows) > MAX_BATCH:
        raise InvalidRequestError(
            f"{where}: {len(rows)} transactions, at most {MAX_BATCH} per request"
        )
    try:
        transactions = _ROWS.validate_python(rows)
    except ValidationError as error:
        raise InvalidRequestError(_describe(error, where)) from None
    return transaction_batch(transactions)


def transaction_batch(transactions: Sequence[Transaction]) -> TransactionBatch:
    """Validated transactions as a scoring batch (a naive ``tx_datetime`` is UTC).

    Shared by the scorer's wire protocols and the Transaction API.
    """
    return TransactionBatch(
        transaction_id=np.array([t.transaction_id for t in transactions], dtype=np.int64),
        seconds=np.array([_unix_seconds(t.tx_datetime) for t in transactions], dtype=np.int64),
        customer_id=np.array([t.customer_id for t in transactions], dtype=np.int64),
        terminal_id=np.array([t.terminal_id for t in transactions], dtype=np.int64),
        tx_amount=np.array([t.tx_amount for t in transactions], dtype=np.float64),
    )


def _describe(error: ValidationError, where: str) -> str:
    """Row, field and reason of each error (at most 5), never the offending value."""
    parts = []
    for item in error.errors(include_input=False, include_url=False)[:5]:
        row, *field = item["loc"]
        path = ".".join(str(f) for f in field)
        if not path:
            parts.append(f"{where}[{row}]: {item['msg']}")
        elif where == "inputs":  # columns: the input tensor, then the row
            parts.append(f"input {path!r} row {row}: {item['msg']}")
        else:
            parts.append(f"{where}[{row}].{path}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _unix_seconds(stamp: dt.datetime) -> int:
    """Unix seconds of a timestamp; a naive one is taken as UTC."""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return int(stamp.timestamp())


def v1_predictions(batch: TransactionBatch, scores: RowScores) -> dict[str, Any]:
    """The V1 response body: one prediction object per transaction."""
    policy = scores.policy_version or [None] * len(scores)
    return {
        "predictions": [
            {
                "transaction_id": tx_id,
                "risk_score": risk,
                "decision": scores.decision[row],
                "reason_codes": json.loads(scores.reason_codes[row]),
                "model_name": scores.model_name[row],
                "model_version": scores.model_version[row],
                "variant": scores.variant[row],
                "fallback": scores.fallback[row],
                "policy_version": policy[row],
            }
            for row, (tx_id, risk) in enumerate(
                zip(batch.transaction_id.tolist(), scores.risk_score.tolist(), strict=True)
            )
        ]
    }


def v2_outputs(scores: RowScores) -> list[dict[str, Any]]:
    """The V2 output tensors (name, datatype, shape, data), each of shape ``[n]``."""
    n = len(scores)
    return [
        {
            "name": "risk_score",
            "datatype": "FP64",
            "shape": [n],
            "data": scores.risk_score.tolist(),
        },
        {"name": "decision", "datatype": "BYTES", "shape": [n], "data": scores.decision},
        {"name": "reason_codes", "datatype": "BYTES", "shape": [n], "data": scores.reason_codes},
        {"name": "model_version", "datatype": "BYTES", "shape": [n], "data": scores.model_version},
        {"name": "variant", "datatype": "BYTES", "shape": [n], "data": scores.variant},
        {
            "name": "policy_version",
            "datatype": "INT64",
            "shape": [n],
            "data": [NO_POLICY if v is None else v for v in scores.policy_version or [None] * n],
        },
    ]


#: Metadata of the V2 inputs and outputs (``GET /v2/models/<name>``): canonical datatypes.
V2_INPUT_METADATA = [
    {
        "name": name,
        "datatype": "FP64"
        if name == "tx_amount"
        else "INT64"
        if "INT64" in V2_DATATYPES[name]
        else "BYTES",
        "shape": [-1],
    }
    for name in INPUT_COLUMNS
]
V2_OUTPUT_METADATA = [
    {"name": "risk_score", "datatype": "FP64", "shape": [-1]},
    {"name": "decision", "datatype": "BYTES", "shape": [-1]},
    {"name": "reason_codes", "datatype": "BYTES", "shape": [-1]},
    {"name": "model_version", "datatype": "BYTES", "shape": [-1]},
    {"name": "variant", "datatype": "BYTES", "shape": [-1]},
    {"name": "policy_version", "datatype": "INT64", "shape": [-1]},
]
