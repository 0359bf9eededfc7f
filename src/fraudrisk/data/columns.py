"""Column rules of an ingestion batch: which source columns map to which lake columns.

Problems with the *columns* of a batch (clear card numbers, duplicate, unknown or missing
columns) make the whole batch unusable and raise :class:`BatchError`.
"""

from __future__ import annotations

from fraudrisk.schemas import CLEAR_CARD_NUMBER_FIELDS, CORE_COLUMNS, LAKE_SCHEMA

#: Columns a source must have; the time offsets (derived), optional fields and labels may not.
REQUIRED_COLUMNS = tuple(name for name in CORE_COLUMNS if not name.startswith("tx_time_"))
#: Column names that mean clear card numbers: such a file is refused as a whole.
CLEAR_CARD_NUMBERS = CLEAR_CARD_NUMBER_FIELDS
#: Column of a rejected row holding its reasons.
REJECT_REASON = "reject_reason"
#: Column of a rejected row holding its 1-based row number in the source.
SOURCE_ROW = "source_row"


class BatchError(ValueError):
    """A problem with the batch as a whole (its columns): none of its rows can be ingested."""


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
