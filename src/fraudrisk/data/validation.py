"""Validation of one ingestion batch, vectorised: valid rows for the lake, the rest with a reason.

A batch is a pyarrow Table, columns as read: strings (CSV) or typed (Parquet). Problems with the
*columns* (clear card numbers, unknown or missing columns) raise :class:`BatchError`. Problems
with *values* reject their row only; it keeps its original values as text, a ``reject_reason``
(its problems ``"; "``-joined, each ``"<column>: <problem>"``) and its 1-based ``source_row``.
Patterns and bounds are read from the pydantic models of :mod:`fraudrisk.schemas`, so the API
and ingestion cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from fraudrisk.schemas import (
    CHANNELS,
    CORE_COLUMNS,
    LAKE_SCHEMA,
    LabeledTransaction,
    Transaction,
)


def _constraint(model: type[BaseModel], field: str, attribute: str) -> Any:
    """The value of one constraint (``pattern``, ``max_length``, ``le``…) of a model field."""
    for item in model.model_fields[field].metadata:
        value = getattr(item, attribute, None)
        if value is not None:
            return value
    raise LookupError(f"{model.__name__}.{field} has no {attribute!r} constraint")


CURRENCY_PATTERN: str = _constraint(Transaction, "currency", "pattern")
MERCHANT_CATEGORY_PATTERN: str = _constraint(Transaction, "merchant_category", "pattern")
COUNTRY_PATTERN: str = _constraint(Transaction, "country", "pattern")
CARD_TOKEN_MAX_LENGTH: int = _constraint(Transaction, "card_token", "max_length")
FRAUD_SCENARIO_MAX: int = _constraint(LabeledTransaction, "tx_fraud_scenario", "le")

#: Columns a source must have; the time offsets (derived), optional fields and labels may not.
REQUIRED_COLUMNS = tuple(name for name in CORE_COLUMNS if not name.startswith("tx_time_"))
#: Column names that mean clear card numbers: such a file is refused as a whole.
CLEAR_CARD_NUMBERS: frozenset[str] = frozenset({"pan", "card_number"})
#: Oldest transaction time accepted; the newest is "now + 1 day".
MIN_TX_DATETIME = dt.datetime(2000, 1, 1)
REJECT_REASON = "reject_reason"
SOURCE_ROW = "source_row"

_FAST_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")  # then pandas' ISO 8601 parser
_SECONDS_PER_DAY = 86_400
_US_PER_SECOND = 1_000_000
_INTEGER = r"^[+-]?\d{1,18}$"
_FINITE_NUMBER = r"(?i)^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d{1,3})?$"
_NON_FINITE = r"(?i)^[+-]?(inf|infinity|nan)$"
_CLEAR_PAN = r"^\d{13,19}$"
_ZONED = r"\d:\d{2}(?::\d{2}(?:\.\d*)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_REDACTED = "<redacted: looks like a card number>"
_SHOWN_CHARS = 40
_Part: TypeAlias = "str | pa.ChunkedArray"
_NULL_TEXT = pa.scalar(None, pa.string())


class BatchError(ValueError):
    """A problem with the batch as a whole (its columns): none of its rows can be ingested."""


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


@dataclass(frozen=True)
class _Check:
    """Rows failing one rule, and the pieces of their reason (text and per-row values)."""

    failed: pa.ChunkedArray
    parts: tuple[_Part, ...]  # reason = the parts joined; columns are taken for failed rows


def reason_kind(reason: str) -> str:
    """The kind of a reject reason: its part before the first ``:`` (the column, mostly)."""
    return reason.split(":", 1)[0].strip()


def count_reason_kinds(reasons: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """How many reasons there are of each kind (see :func:`reason_kind`), most frequent first."""
    kinds = pc.utf8_trim_whitespace(pc.replace_substring_regex(reasons, r"(?s):.*$", ""))
    counts = pc.value_counts(kinds).to_pylist()
    ordered = sorted(counts, key=lambda item: (-item["counts"], item["values"]))
    return {item["values"]: item["counts"] for item in ordered}


def lake_columns(
    names: list[str], allow_unknown_columns: bool = False
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Map source column names to lake names (any case), and list the dropped ones.

    Raises:
        BatchError: For a clear card number column, duplicate, unknown or missing columns.
    """
    lowered = [name.strip().lower() for name in names]
    clear = [name for name, low in zip(names, lowered, strict=True) if low in CLEAR_CARD_NUMBERS]
    if clear:
        raise BatchError(
            f"column {clear[0]!r} holds clear card numbers: tokenise it into card_token "
            "before ingesting (its values are neither ingested nor shown)"
        )
    duplicates = sorted({low for low in lowered if lowered.count(low) > 1})
    if duplicates:
        raise BatchError(f"duplicate columns (ignoring case): {duplicates}")
    known = [low in LAKE_SCHEMA.names for low in lowered]
    unknown = [name for name, ok in zip(names, known, strict=True) if not ok]
    if unknown and not allow_unknown_columns:
        raise BatchError(
            f"unknown columns: {unknown}; expected a subset of {LAKE_SCHEMA.names} "
            "(any case; allow_unknown_columns / --allow-unknown-columns drops them)"
        )
    missing = [column for column in REQUIRED_COLUMNS if column not in lowered]
    if missing:
        raise BatchError(f"missing required columns: {missing}")
    mapping = {name: low for name, low, ok in zip(names, lowered, known, strict=True) if ok}
    return mapping, tuple(unknown)


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
        pan_like = _matches(text["card_token"], _CLEAR_PAN)
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
) -> tuple[dict[str, pa.ChunkedArray], list[_Check]]:
    """Parse every lake column; absent optional columns become nulls."""
    n = len(text["transaction_id"])
    checks: list[_Check] = []
    values: dict[str, pa.ChunkedArray] = {}
    for name in ("transaction_id", "customer_id", "terminal_id"):
        values[name] = _parse_int(name, text[name], checks, rule="must be >= 0")
    values["tx_amount"] = _parse_amount(text["tx_amount"], checks)
    values["tx_datetime"] = _parse_datetime(text["tx_datetime"], typed["tx_datetime"], checks)
    _check_datetime_range(text["tx_datetime"], values["tx_datetime"], epoch, now, checks)
    values.update(_time_offsets(text, values["tx_datetime"], epoch, checks))
    for name, pattern, label in (
        ("currency", CURRENCY_PATTERN, "not an ISO 4217 code"),
        ("merchant_category", MERCHANT_CATEGORY_PATTERN, "not a 4-digit merchant category code"),
        ("country", COUNTRY_PATTERN, "not an ISO 3166-1 alpha-2 code"),
        ("channel", "^(" + "|".join(sorted(CHANNELS)) + ")$", f"not one of {sorted(CHANNELS)}"),
    ):
        column = text.get(name, _nulls(n))
        bad = pc.and_(pc.is_valid(column), pc.invert(_matches(column, pattern)))
        checks.append(_Check(bad, (f"{name}: {label} '", column, "'")))
        values[name] = column
    values["card_token"] = _parse_card_token(text.get("card_token", _nulls(n)), checks)
    for name, high, rule in (
        ("tx_fraud", 1, "must be 0 or 1"),
        ("tx_fraud_scenario", FRAUD_SCENARIO_MAX, f"must be 0 .. {FRAUD_SCENARIO_MAX}"),
    ):
        column = text.get(name, _nulls(n))
        parsed = _parse_int(name, column, checks, rule=rule, high=high, required=False)
        values[name] = pc.cast(parsed, pa.int8())
    return values, checks


def _parse_int(
    name: str,
    column: pa.ChunkedArray,
    checks: list[_Check],
    *,
    rule: str,
    high: int | None = None,
    required: bool = True,
) -> pa.ChunkedArray:
    """Parse integers ("5" and "5.0" alike), checking ``0 <= value <= high``; bad ones -> null."""
    present = pc.is_valid(column)
    if required:
        checks.append(_Check(pc.invert(present), (f"{name}: missing",)))
    try:  # fast path: every value is a plain integer (Arrow would also read hex: not here)
        if pc.any(pc.match_substring(column, "x", ignore_case=True)).as_py():
            raise pa.ArrowInvalid("hexadecimal")
        parsed = pc.cast(column, pa.int64())
    except pa.ArrowInvalid:
        cleaned = pc.replace_substring_regex(column, r"\.0*$", "")
        syntax_ok = _matches(cleaned, _INTEGER)
        bad_syntax = pc.and_(present, pc.invert(syntax_ok))
        checks.append(_Check(bad_syntax, (f"{name}: not an integer '", column, "'")))
        parsed = pc.cast(pc.if_else(syntax_ok, cleaned, _NULL_TEXT), pa.int64())
    out = pc.less(parsed, 0)
    if high is not None:
        out = pc.or_(out, pc.greater(parsed, high))
    out = pc.fill_null(out, False)
    checks.append(_Check(out, (f"{name}: {rule} (", column, ")")))
    return pc.if_else(out, pa.scalar(None, pa.int64()), parsed)


def _parse_amount(column: pa.ChunkedArray, checks: list[_Check]) -> pa.ChunkedArray:
    """Parse amounts: finite numbers >= 0 (0.00 is a valid authorisation)."""
    present = pc.is_valid(column)
    checks.append(_Check(pc.invert(present), ("tx_amount: missing",)))
    try:  # fast path: every value is a number
        parsed = pc.cast(column, pa.float64())
    except pa.ArrowInvalid:
        number = pc.or_(_matches(column, _FINITE_NUMBER), _matches(column, _NON_FINITE))
        not_number = pc.and_(present, pc.invert(number))
        checks.append(_Check(not_number, ("tx_amount: not a number: '", column, "'")))
        parsed = pc.cast(pc.if_else(number, column, _NULL_TEXT), pa.float64())
    non_finite = pc.fill_null(pc.invert(pc.is_finite(parsed)), False)
    negative = pc.fill_null(pc.less(parsed, 0), False)
    checks.append(_Check(non_finite, ("tx_amount: not finite (", column, ")")))
    checks.append(_Check(negative, ("tx_amount: negative (", column, ")")))
    bad = pc.or_(non_finite, negative)
    return pc.if_else(bad, pa.scalar(None, pa.float64()), parsed)


def _parse_datetime(
    column: pa.ChunkedArray, typed: pa.ChunkedArray, checks: list[_Check]
) -> pa.ChunkedArray:
    """Parse ISO 8601 times (an offset is converted to UTC) or take typed timestamps as UTC."""
    target = pa.timestamp("us")
    if pa.types.is_timestamp(typed.type) or pa.types.is_date(typed.type):
        # A zoned timestamp stores UTC instants: dropping the zone keeps them as naive UTC.
        parsed = pc.cast(typed, target, safe=False)
    else:
        parsed = pc.strptime(column, format=_FAST_FORMATS[0], unit="us", error_is_null=True)
        for fmt in _FAST_FORMATS[1:]:
            if pc.any(pc.and_(pc.is_valid(column), pc.is_null(parsed))).as_py():
                again = pc.strptime(column, format=fmt, unit="us", error_is_null=True)
                parsed = pc.coalesce(parsed, again)
        retry = pc.and_(pc.is_valid(column), pc.is_null(parsed))
        if pc.any(retry).as_py():
            parsed = pc.coalesce(parsed, pc.cast(pa.array(_parse_iso(column.to_pandas())), target))
    present = pc.is_valid(column)
    checks.append(_Check(pc.invert(present), ("tx_datetime: missing",)))
    unparseable = pc.and_(present, pc.is_null(parsed))
    checks.append(_Check(unparseable, ("tx_datetime: unparseable '", column, "'")))
    return parsed


def _parse_iso(texts: pd.Series) -> pd.Series:
    """ISO 8601 texts as naive UTC (NaT where unparseable).

    Zoned and naive texts are parsed apart: in one call pandas gives the naive ones the offset
    of a zoned one before them.
    """
    zoned = texts.str.contains(_ZONED, na=False)
    out = pd.Series(pd.NaT, index=texts.index, dtype="datetime64[ns]")
    for part in (zoned, ~zoned):
        if part.any():
            times = pd.to_datetime(texts[part], format="ISO8601", utc=True, errors="coerce")
            out[part] = times.dt.tz_convert(None)
    return out


def _check_datetime_range(
    column: pa.ChunkedArray,
    parsed: pa.ChunkedArray,
    epoch: dt.date,
    now: dt.datetime,
    checks: list[_Check],
) -> None:
    """Reject times outside ``2000-01-01 .. now + 1 day`` and times before the lake epoch."""
    newest = now + dt.timedelta(days=1)
    too_old = pc.less(parsed, pa.scalar(MIN_TX_DATETIME, pa.timestamp("us")))
    too_new = pc.greater(parsed, pa.scalar(newest, pa.timestamp("us")))
    out = pc.fill_null(pc.or_(too_old, too_new), False)
    allowed = f"(allowed {MIN_TX_DATETIME.date()} .. {newest.date()})"
    shown = pc.cast(pc.cast(parsed, pa.date32()), pa.string())
    checks.append(_Check(out, ("tx_datetime: out of range ", shown, f" {allowed}")))
    epoch_start = dt.datetime.combine(epoch, dt.time())
    early = pc.less(parsed, pa.scalar(epoch_start, pa.timestamp("us")))
    early = pc.and_(pc.fill_null(early, False), pc.invert(out))
    checks.append(_Check(early, (f"tx_datetime: before the lake epoch {epoch} ('", column, "')")))


def _time_offsets(
    text: dict[str, pa.ChunkedArray],
    parsed: pa.ChunkedArray,
    epoch: dt.date,
    checks: list[_Check],
) -> dict[str, pa.ChunkedArray]:
    """Derive tx_time_seconds/days from tx_datetime; reject given values that disagree."""
    epoch_us = int(dt.datetime.combine(epoch, dt.time()).replace(tzinfo=dt.UTC).timestamp())
    micros = pc.subtract(pc.cast(parsed, pa.int64()), epoch_us * _US_PER_SECOND)
    seconds = pc.divide(micros, _US_PER_SECOND)
    days = pc.divide(seconds, _SECONDS_PER_DAY)
    for name, expected in (("tx_time_seconds", seconds), ("tx_time_days", days)):
        if name not in text:
            continue
        given = _parse_int(name, text[name], checks, rule="must be >= 0", required=False)
        wrong = pc.fill_null(pc.not_equal(given, expected), False)
        parts = (
            f"{name}: inconsistent with tx_datetime and lake epoch (got ",
            text[name],
            ", expected ",
            pc.cast(expected, pa.string()),
            ")",
        )
        checks.append(_Check(wrong, parts))
    return {"tx_time_seconds": seconds, "tx_time_days": pc.cast(days, pa.int32(), safe=False)}


def _parse_card_token(column: pa.ChunkedArray, checks: list[_Check]) -> pa.ChunkedArray:
    """Reject tokens that are too long or look like a clear card number (never echoed)."""
    too_long = pc.fill_null(pc.greater(pc.utf8_length(column), CARD_TOKEN_MAX_LENGTH), False)
    checks.append(
        _Check(too_long, (f"card_token: longer than {CARD_TOKEN_MAX_LENGTH} characters",))
    )
    pan_like = _matches(column, _CLEAR_PAN)
    checks.append(_Check(pan_like, ("card_token: looks like a clear card number; tokenise it",)))
    return column


def _duplicate_checks(
    ids: pa.ChunkedArray,
    rows: pa.Array,
    existing_ids: pa.Array | pa.ChunkedArray | None,
) -> list[_Check]:
    """Reject repeated ids (the first occurrence is kept) and ids already in the lake."""
    as_int64 = {pa.int64(): pd.Int64Dtype()}.get
    frame = pd.DataFrame({"id": ids.to_pandas(types_mapper=as_int64), "row": rows.to_numpy()})
    repeated = frame["id"].duplicated(keep="first") & frame["id"].notna()
    first_row = frame.groupby("id")["row"].transform("first") if repeated.any() else frame["row"]
    also = pa.chunked_array([pa.array(first_row.astype("Int64")).cast(pa.string())])
    parts = ("transaction_id: duplicate within file (also row ", also, ")")
    checks = [_Check(pa.chunked_array([pa.array(repeated.to_numpy())]), parts)]
    if existing_ids is not None and len(existing_ids):
        in_lake = pc.fill_null(pc.is_in(ids, value_set=pc.unique(existing_ids)), False)
        checks.append(_Check(in_lake, ("transaction_id: already in the lake",)))
    return checks


def _rejected(
    original: dict[str, pa.ChunkedArray],
    rows: pa.Array,
    failed: pa.ChunkedArray,
    checks: list[_Check],
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
        reasons.append(pc.if_else(hit, text, _NULL_TEXT))
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
    return pc.if_else(pc.equal(trimmed, ""), _NULL_TEXT, trimmed)


def _matches(column: pa.ChunkedArray, pattern: str) -> pa.ChunkedArray:
    """Whether each value matches a regular expression (null values do not)."""
    return pc.fill_null(pc.match_substring_regex(column, pattern), False)


def _shown(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Values as they appear in a reason: at most a few dozen characters."""
    return pc.utf8_slice_codeunits(column, 0, _SHOWN_CHARS)


def _nulls(n: int) -> pa.ChunkedArray:
    """An all-null text column."""
    return pa.chunked_array([pa.nulls(n, pa.string())])


def _any(checks: list[_Check]) -> pa.ChunkedArray:
    """Rows failing at least one check."""
    failed = checks[0].failed
    for check in checks[1:]:
        failed = pc.or_(failed, check.failed)
    return failed
