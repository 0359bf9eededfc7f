"""Data quality checks on the feature table, failing loudly.

Each day of the table is checked as it is written (nulls, ranges, one row per transaction) and
the build checks the total row count against the lake's.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

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
    problems: list[str] = []
    unusable: set[str] = set()
    for name in [*KEY_COLUMNS, *RANGES]:
        if name not in table.column_names:
            problems.append(f"{label}: column {name} is missing")
            unusable.add(name)
        elif nulls := table[name].null_count:
            problems.append(f"{label}: {name} has {nulls} nulls")
            unusable.add(name)
    if table.num_rows == 0:
        return problems
    for name, (low, high) in RANGES.items():
        if name in unusable:
            continue
        values = np.asarray(table[name].to_numpy())
        if np.issubdtype(values.dtype, np.floating) and (nans := int(np.isnan(values).sum())):
            problems.append(f"{label}: {name} has {nans} NaN values")
            continue
        lowest, highest = values.min(), values.max()
        if low is not None and lowest < low:
            problems.append(f"{label}: {name} min {lowest} < {low}")
        if high is not None and highest > high:
            problems.append(f"{label}: {name} max {highest} > {high}")
    if "transaction_id" in unusable:
        return problems
    ids = np.sort(np.asarray(table["transaction_id"].to_numpy()))
    if (duplicates := int(np.sum(ids[1:] == ids[:-1]))) > 0:
        problems.append(f"{label}: {duplicates} duplicate transaction ids")
    return problems


def raise_on_problems(problems: list[str], rows: int, expected_rows: int) -> None:
    """Raise :class:`FeatureQualityError` listing every problem, including a row-count gap."""
    if rows != expected_rows:
        problems = [f"feature table has {rows} rows, the lake has {expected_rows}", *problems]
    if problems:
        raise FeatureQualityError("feature table failed checks:\n  " + "\n  ".join(problems))
