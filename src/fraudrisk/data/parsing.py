"""Vectorised parsers of batch columns, one per value type, each recording its failed rows.

Every parser takes text columns (trimmed, blanks as null) and appends a :class:`Check` per rule
to a list: the rows failing the rule and the pieces of their reject reason. Bad values become
null; the rows are rejected by :mod:`fraudrisk.data.validation`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraudrisk.schemas import CARD_TOKEN_MAX_LENGTH

#: Oldest transaction time accepted; the newest is "now + 1 day".
MIN_TX_DATETIME = dt.datetime(2000, 1, 1)
#: A value that looks like a clear card number (PAN).
CLEAR_PAN = r"^\d{13,19}$"
#: A null text value.
NULL_TEXT = pa.scalar(None, pa.string())

_FAST_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")  # then pandas' ISO 8601 parser
_SECONDS_PER_DAY = 86_400
_US_PER_SECOND = 1_000_000
_INTEGER = r"^[+-]?\d{1,18}$"
_FINITE_NUMBER = r"(?i)^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d{1,3})?$"
_NON_FINITE = r"(?i)^[+-]?(inf|infinity|nan)$"
_ZONED = r"\d:\d{2}(?::\d{2}(?:\.\d*)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"

Part: TypeAlias = "str | pa.ChunkedArray"


@dataclass(frozen=True)
class Check:
    """Rows failing one rule, and the pieces of their reason (text and per-row values)."""

    failed: pa.ChunkedArray
    parts: tuple[Part, ...]  # reason = the parts joined; columns are taken for failed rows


def parse_int(
    name: str,
    column: pa.ChunkedArray,
    checks: list[Check],
    *,
    rule: str,
    high: int | None = None,
    required: bool = True,
) -> pa.ChunkedArray:
    """Parse integers ("5" and "5.0" alike), checking ``0 <= value <= high``; bad ones -> null."""
    present = pc.is_valid(column)
    if required:
        checks.append(Check(pc.invert(present), (f"{name}: missing",)))
    try:  # fast path: every value is a plain integer (Arrow would also read hex: not here)
        if pc.any(pc.match_substring(column, "x", ignore_case=True)).as_py():
            raise pa.ArrowInvalid("hexadecimal")
        parsed = pc.cast(column, pa.int64())
    except pa.ArrowInvalid:
        cleaned = pc.replace_substring_regex(column, r"\.0*$", "")
        syntax_ok = matches(cleaned, _INTEGER)
        bad_syntax = pc.and_(present, pc.invert(syntax_ok))
        checks.append(Check(bad_syntax, (f"{name}: not an integer '", column, "'")))
        parsed = pc.cast(pc.if_else(syntax_ok, cleaned, NULL_TEXT), pa.int64())
    out = pc.less(parsed, 0)
    if high is not None:
        out = pc.or_(out, pc.greater(parsed, high))
    out = pc.fill_null(out, False)
    checks.append(Check(out, (f"{name}: {rule} (", column, ")")))
    return pc.if_else(out, pa.scalar(None, pa.int64()), parsed)


def parse_amount(column: pa.ChunkedArray, checks: list[Check]) -> pa.ChunkedArray:
    """Parse amounts: finite numbers >= 0 (0.00 is a valid authorisation)."""
    present = pc.is_valid(column)
    checks.append(Check(pc.invert(present), ("tx_amount: missing",)))
    try:  # fast path: every value is a number
        parsed = pc.cast(column, pa.float64())
    except pa.ArrowInvalid:
        number = pc.or_(matches(column, _FINITE_NUMBER), matches(column, _NON_FINITE))
        not_number = pc.and_(present, pc.invert(number))
        checks.append(Check(not_number, ("tx_amount: not a number: '", column, "'")))
        parsed = pc.cast(pc.if_else(number, column, NULL_TEXT), pa.float64())
    non_finite = pc.fill_null(pc.invert(pc.is_finite(parsed)), False)
    negative = pc.fill_null(pc.less(parsed, 0), False)
    checks.append(Check(non_finite, ("tx_amount: not finite (", column, ")")))
    checks.append(Check(negative, ("tx_amount: negative (", column, ")")))
    bad = pc.or_(non_finite, negative)
    return pc.if_else(bad, pa.scalar(None, pa.float64()), parsed)


def parse_datetime(
    column: pa.ChunkedArray, typed: pa.ChunkedArray, checks: list[Check]
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
    checks.append(Check(pc.invert(present), ("tx_datetime: missing",)))
    unparseable = pc.and_(present, pc.is_null(parsed))
    checks.append(Check(unparseable, ("tx_datetime: unparseable '", column, "'")))
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


def check_datetime_range(
    column: pa.ChunkedArray,
    parsed: pa.ChunkedArray,
    epoch: dt.date,
    now: dt.datetime,
    checks: list[Check],
) -> None:
    """Reject times outside ``2000-01-01 .. now + 1 day`` and times before the lake epoch."""
    newest = now + dt.timedelta(days=1)
    too_old = pc.less(parsed, pa.scalar(MIN_TX_DATETIME, pa.timestamp("us")))
    too_new = pc.greater(parsed, pa.scalar(newest, pa.timestamp("us")))
    out = pc.fill_null(pc.or_(too_old, too_new), False)
    allowed = f"(allowed {MIN_TX_DATETIME.date()} .. {newest.date()})"
    shown = pc.cast(pc.cast(parsed, pa.date32()), pa.string())
    checks.append(Check(out, ("tx_datetime: out of range ", shown, f" {allowed}")))
    epoch_start = dt.datetime.combine(epoch, dt.time())
    early = pc.less(parsed, pa.scalar(epoch_start, pa.timestamp("us")))
    early = pc.and_(pc.fill_null(early, False), pc.invert(out))
    checks.append(Check(early, (f"tx_datetime: before the lake epoch {epoch} ('", column, "')")))


def time_offsets(
    text: dict[str, pa.ChunkedArray],
    parsed: pa.ChunkedArray,
    epoch: dt.date,
    checks: list[Check],
) -> dict[str, pa.ChunkedArray]:
    """Derive tx_time_seconds/days from tx_datetime; reject given values that disagree."""
    epoch_us = int(dt.datetime.combine(epoch, dt.time()).replace(tzinfo=dt.UTC).timestamp())
    micros = pc.subtract(pc.cast(parsed, pa.int64()), epoch_us * _US_PER_SECOND)
    seconds = pc.divide(micros, _US_PER_SECOND)
    days = pc.divide(seconds, _SECONDS_PER_DAY)
    for name, expected in (("tx_time_seconds", seconds), ("tx_time_days", days)):
        if name not in text:
            continue
        given = parse_int(name, text[name], checks, rule="must be >= 0", required=False)
        wrong = pc.fill_null(pc.not_equal(given, expected), False)
        parts = (
            f"{name}: inconsistent with tx_datetime and lake epoch (got ",
            text[name],
            ", expected ",
            pc.cast(expected, pa.string()),
            ")",
        )
        checks.append(Check(wrong, parts))
    return {"tx_time_seconds": seconds, "tx_time_days": pc.cast(days, pa.int32(), safe=False)}


def parse_card_token(column: pa.ChunkedArray, checks: list[Check]) -> pa.ChunkedArray:
    """Reject tokens that are too long or look like a clear card number (never echoed)."""
    too_long = pc.fill_null(pc.greater(pc.utf8_length(column), CARD_TOKEN_MAX_LENGTH), False)
    checks.append(Check(too_long, (f"card_token: longer than {CARD_TOKEN_MAX_LENGTH} characters",)))
    pan_like = matches(column, CLEAR_PAN)
    checks.append(Check(pan_like, ("card_token: looks like a clear card number; tokenise it",)))
    return column


def matches(column: pa.ChunkedArray, pattern: str) -> pa.ChunkedArray:
    """Whether each value matches a regular expression (null values do not)."""
    return pc.fill_null(pc.match_substring_regex(column, pattern), False)


def nulls(n: int) -> pa.ChunkedArray:
    """An all-null text column."""
    return pa.chunked_array([pa.nulls(n, pa.string())])
