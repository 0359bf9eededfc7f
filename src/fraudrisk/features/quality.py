"""Data quality checks on the feature table, failing loudly.

Each day of the table is checked as it is written (nulls, ranges, one row per transaction) and
the build checks the total row count against the lake's.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from fraudrisk.features.definitions import ALL_FEATURES, KEY_COLUMNS, SECONDS_SINCE_PREV_CAP

#: Allowed ranges (inclusive); None = unbounded.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "tx_amount": (0, None),
    "tx_during_weekend": (0, 1),
    "tx_during_night": (0, 1),
    "customer_id_new_terminal_30day_window": (0, 1),
    "customer_id_seconds_since_prev_tx": (0, SECONDS_SINCE_PREV_CAP),
    "customer_id_amount_ratio_30day_window": (0, None),
}
for _feature in ALL_FEATURES:
    if "_nb_tx_" in _feature.name:
        RANGES[_feature.name] = (1 if _feature.group == "customer" else 0, None)
    elif "_risk_" in _feature.name:
        RANGES[_feature.name] = (0, 1)
    elif "_avg_amount_" in _feature.name:
        RANGES[_feature.name] = (0, None)


class FeatureQualityError(RuntimeError):
    """The feature table failed a data quality check."""


def table_problems(table: pa.Table, label: str) -> list[str]:
    """Every failed check of one piece of the feature table (empty when it passes).

    Args:
        table: Rows of the feature table.
        label: How to name the piece in messages, e.g. ``dt=2018-04-01``.
    """
    problems = []
    for name in [*KEY_COLUMNS, *RANGES]:
        if name not in table.column_names:
            problems.append(f"{label}: column {name} is missing")
        elif nulls := table[name].null_count:
            problems.append(f"{label}: {name} has {nulls} nulls")
    for name, (low, high) in RANGES.items():
        if name not in table.column_names or table.num_rows == 0:
            continue
        bounds = pc.min_max(table[name])
        lowest, highest = bounds["min"].as_py(), bounds["max"].as_py()
        if low is not None and lowest is not None and lowest < low:
            problems.append(f"{label}: {name} min {lowest} < {low}")
        if high is not None and highest is not None and highest > high:
            problems.append(f"{label}: {name} max {highest} > {high}")
    if "transaction_id" in table.column_names:
        distinct = pc.count_distinct(table["transaction_id"]).as_py()
        if distinct != table.num_rows:
            problems.append(f"{label}: {table.num_rows - distinct} duplicate transaction ids")
    return problems


def raise_on_problems(problems: list[str], rows: int, expected_rows: int) -> None:
    """Raise :class:`FeatureQualityError` listing every problem, including a row-count gap."""
    if rows != expected_rows:
        problems = [f"feature table has {rows} rows, the lake has {expected_rows}", *problems]
    if problems:
        raise FeatureQualityError("feature table failed checks:\n  " + "\n  ".join(problems))
