"""Validation of one ingestion batch, vectorised: valid rows for the lake, the rest with a reason.

A batch is a pyarrow Table, columns as read: strings (CSV) or typed (Parquet). Problems with the
*columns* (clear card numbers, unknown or missing columns) raise :class:`BatchError`. Problems
with *values* reject their row only; it keeps its original values as text, a ``reject_reason``
(its problems ``"; "``-joined, each ``"<column>: <problem>"``) and its 1-based ``source_row``.
Patterns and bounds are the constants of :mod:`fraudrisk.schemas` that its pydantic models use
too, so the API and ingestion cannot disagree. Column rules live in
:mod:`fraudrisk.data.columns`, value parsers in :mod:`fraudrisk.data.parsing`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraudrisk.data.columns import (
    CLEAR_CARD_NUMBERS,
    REJECT_REASON,
    REQUIRED_COLUMNS,
    SOURCE_ROW,
    BatchError,
    lake_columns,
)
from fraudrisk.data.parsing import (
    CLEAR_PAN,
    MIN_TX_DATETIME,
    NULL_TEXT,
    Check,
    check_datetime_range,
    matches,
    nulls,
    parse_amount,
    parse_card_token,
    parse_datetime,
    parse_int,
    time_offsets,
)
from fraudrisk.schemas import (
    CARD_TOKEN_MAX_LENGTH,
    CHANNELS,
    COUNTRY_PATTERN,
    CURRENCY_PATTERN,
    FRAUD_SCENARIO_MAX,
    LAKE_SCHEMA,
    MERCHANT_CATEGORY_PATTERN,
)

__all__ = [
    "CARD_TOKEN_MAX_LENGTH",
    "CLEAR_CARD_NUMBERS",
    "COUNTRY_PATTERN",
    "CURRENCY_PATTERN",
    "FRAUD_SCENARIO_MAX",
    "MERCHANT_CATEGORY_PATTERN",
    "MIN_TX_DATETIME",
    "REJECT_REASON",
    "REQUIRED_COLUMNS",
    "SOURCE_ROW",
    "BatchError",
    "BatchValidation",
    "count_reason_kinds",
    "lake_columns",
    "reason_kind",
    "validate_batch",
]

_REDACTED = "<redacted: looks like a card number>"
_SHOWN_CHARS = 40


@dataclass(frozen=True)
class BatchValidation:
    """The outcome of :func:`validate_batch`.

    Attributes:
        valid: Valid rows, conforming to ``LAKE_SCHEMA``.
        rejected: Rejected rows: every original column as text, ``reject_reason``, ``source_row``.
        dropped_columns: Original names of unknown columns that were dropped.
    """

    valid: pa.Table
    rejected: pa.Table
    dropped_columns: tuple[str, ...]


def reason_kind(reason: str) -> str:
    """The kind of a reject reason: its part before the first ``:`` (the column, mostly)."""
    return reason.split(":", 1)[0].strip()


def count_reason_kinds(reasons: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """How many reasons there are of each kind (see :func:`reason_kind`), most frequent first."""
    kinds = pc.utf8_trim_whitespace(pc.replace_substring_regex(reasons, r"(?s):.*$", ""))
    counts = pc.value_counts(kinds).to_pylist()
    ordered = sorted(counts, key=lambda item: (-item["counts"], item["values"]))
    return {item["values"]: item["counts"] for item in ordered}


def validate_batch(
    table: pa.Table,
    *,
    epoch: dt.date,
    existing_ids: pa.Array | pa.ChunkedArray | None = None,
    allow_unknown_columns: bool = False,
    source_rows: pa.Array | None = None,
    now: dt.datetime | None = None,
) -> BatchValidation:
    """Split a batch into lake-ready rows and rejected rows with reasons.

    Args:
        table: The batch, columns as read (strings or typed), source column names.
        epoch: Day 0 of ``tx_time_seconds`` of the lake the batch goes to.
        existing_ids: Transaction ids already in the lake (rows reusing one are rejected).
        allow_unknown_columns: Drop unknown columns instead of raising.
        source_rows: 1-based source row number of each row; default ``1..n``.
        now: Current naive UTC time (for the "not in the future" rule); default the clock.

    Returns:
        The valid rows, the rejected rows and the dropped columns.

    Raises:
        BatchError: If the columns make the whole batch unusable.
    """
    mapping, dropped = lake_columns(table.column_names, allow_unknown_columns)
    original = {name: _as_text(table[name]) for name in table.column_names}
    text = {low: _normalised(original[name]) for name, low in mapping.items()}
    typed = {low: table[name] for name, low in mapping.items()}
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    values, checks = _parse_all(text, typed, epoch, now)
    rows = source_rows if source_rows is not None else pa.array(range(1, table.num_rows + 1))
    rows = pc.cast(rows, pa.int64())
    checks += _duplicate_checks(values["transaction_id"], rows, existing_ids)
    failed = _any(checks)
    if "card_token" in text:
        pan_like = matches(text["card_token"], CLEAR_PAN)
        card_name = next(name for name, low in mapping.items() if low == "card_token")
        original[card_name] = pc.if_else(pan_like, _REDACTED, original[card_name])
    valid = pa.Table.from_arrays(
        [pc.filter(values[field.name], pc.invert(failed)) for field in LAKE_SCHEMA],
        schema=LAKE_SCHEMA,
    )
    return BatchValidation(valid, _rejected(original, rows, failed, checks), dropped)


def _parse_all(
    text: dict[str, pa.ChunkedArray],
    typed: dict[str, pa.ChunkedArray],
    epoch: dt.date,
    now: dt.datetime,
) -> tuple[dict[str, pa.ChunkedArray], list[Check]]:
    """Parse every lake column; absent optional columns become nulls."""
    n = len(text["transaction_id"])
    checks: list[Check] = []
    values: dict[str, pa.ChunkedArray] = {}
    for name in ("transaction_id", "customer_id", "terminal_id"):
        values[name] = parse_int(name, text[name], checks, rule="must be >= 0")
    values["tx_amount"] = parse_amount(text["tx_amount"], checks)
    values["tx_datetime"] = parse_datetime(text["tx_datetime"], typed["tx_datetime"], checks)
    check_datetime_range(text["tx_datetime"], values["tx_datetime"], epoch, now, checks)
    values.update(time_offsets(text, values["tx_datetime"], epoch, checks))
    for name, pattern, label in (
        ("currency", CURRENCY_PATTERN, "not an ISO 4217 code"),
        ("merchant_category", MERCHANT_CATEGORY_PATTERN, "not a 4-digit merchant category code"),
        ("country", COUNTRY_PATTERN, "not an ISO 3166-1 alpha-2 code"),
        ("channel", "^(" + "|".join(sorted(CHANNELS)) + ")$", f"not one of {sorted(CHANNELS)}"),
    ):
        column = text.get(name, nulls(n))
        bad = pc.and_(pc.is_valid(column), pc.invert(matches(column, pattern)))
        checks.append(Check(bad, (f"{name}: {label} '", column, "'")))
        values[name] = column
    values["card_token"] = parse_card_token(text.get("card_token", nulls(n)), checks)
    for name, high, rule in (
        ("tx_fraud", 1, "must be 0 or 1"),
        ("tx_fraud_scenario", FRAUD_SCENARIO_MAX, f"must be 0 .. {FRAUD_SCENARIO_MAX}"),
    ):
        column = text.get(name, nulls(n))
        parsed = parse_int(name, column, checks, rule=rule, high=high, required=False)
        values[name] = pc.cast(parsed, pa.int8())
    return values, checks


def _duplicate_checks(
    ids: pa.ChunkedArray,
    rows: pa.Array,
    existing_ids: pa.Array | pa.ChunkedArray | None,
) -> list[Check]:
    """Reject repeated ids (the first occurrence is kept) and ids already in the lake."""
    as_int64 = {pa.int64(): pd.Int64Dtype()}.get
    frame = pd.DataFrame({"id": ids.to_pandas(types_mapper=as_int64), "row": rows.to_numpy()})
    repeated = frame["id"].duplicated(keep="first") & frame["id"].notna()
    first_row = frame.groupby("id")["row"].transform("first") if repeated.any() else frame["row"]
    also = pa.chunked_array([pa.array(first_row.astype("Int64")).cast(pa.string())])
    parts = ("transaction_id: duplicate within file (also row ", also, ")")
    checks = [Check(pa.chunked_array([pa.array(repeated.to_numpy())]), parts)]
    if existing_ids is not None and len(existing_ids):
        in_lake = pc.fill_null(pc.is_in(ids, value_set=pc.unique(existing_ids)), False)
        checks.append(Check(in_lake, ("transaction_id: already in the lake",)))
    return checks


def _rejected(
    original: dict[str, pa.ChunkedArray],
    rows: pa.Array,
    failed: pa.ChunkedArray,
    checks: list[Check],
) -> pa.Table:
    """The failed rows as text, each with its joined reasons and source row."""
    index = pc.indices_nonzero(failed.combine_chunks())  # a 0-chunk input crashes pyarrow 25
    reasons = []
    for check in checks:
        hit = pc.take(check.failed, index)
        if not pc.any(hit).as_py():
            continue
        pieces = [
            part if isinstance(part, str) else _shown(pc.take(part, index)) for part in check.parts
        ]
        text = pc.binary_join_element_wise(*pieces, "") if len(pieces) > 1 else pieces[0]
        reasons.append(pc.if_else(hit, text, NULL_TEXT))
    joined = (
        pc.binary_join_element_wise(*reasons, "; ", null_handling="skip")
        if reasons
        else pa.array([], pa.string())
    )
    columns = {name: pc.take(column, index) for name, column in original.items()}
    columns[REJECT_REASON] = joined
    columns[SOURCE_ROW] = pc.take(rows, index)
    return pa.table(columns)


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as text (typed values formatted by Arrow)."""
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


def _normalised(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Trimmed text, blank values as null."""
    trimmed = pc.utf8_trim_whitespace(column)
    return pc.if_else(pc.equal(trimmed, ""), NULL_TEXT, trimmed)


def _shown(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Values as they appear in a reason: at most a few dozen characters."""
    return pc.utf8_slice_codeunits(column, 0, _SHOWN_CHARS)


def _any(checks: list[Check]) -> pa.ChunkedArray:
    """Rows failing at least one check."""
    failed = checks[0].failed
    for check in checks[1:]:
        failed = pc.or_(failed, check.failed)
    return failed
