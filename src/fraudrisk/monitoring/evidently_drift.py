"""The Evidently report of a window against a reference, and what we read back from it.

One Evidently ``Report`` holds everything a risk team looks at:

* input drift — ``DataDriftPreset`` over the model's features: one ``ValueDrift`` per feature
  with Evidently's default method for the column's type and size (or ``monitoring.stattest``
  and ``monitoring.stattest_threshold`` when set), and the share of drifted features;
* prediction drift — ``ValueDrift`` of the risk score with the default method, and its
  population stability index (``method="psi"``) against ``monitoring.score_drift_psi``;
* data quality — ``DatasetStats`` (rows, missing, empty, constant and duplicated columns), the
  score's ``ValueStats``, and per feature: missing values, values outside the reference's
  range (numeric features) and categories the reference never had (the 0/1 flags).

Per-feature verdicts are the report's own drift tests (``include_tests=True``), so the HTML a
person reads and the numbers a machine reads are the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fraudrisk.config import MonitoringSettings
from fraudrisk.registry.references import SCORE_COLUMN

#: The flag features: 0/1 categories, compared as categories (new values are new categories).
CATEGORICAL_FEATURES = frozenset(
    {"tx_during_weekend", "tx_during_night", "customer_id_new_terminal_30day_window"}
)
_V2 = "evidently:metric_v2:"
_PSI = "psi"


@dataclass(frozen=True)
class DriftAnalysis:
    """The Evidently snapshot and the figures read from it."""

    snapshot: Any
    drifted: list[str]
    drift_share: float
    feature_scores: dict[str, float]
    methods: dict[str, str]
    prediction_drift: float | None
    score_psi: float | None
    quality: dict[str, int]


def analyse(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    features: tuple[str, ...],
    options: MonitoringSettings,
    *,
    timestamp: dt.datetime,
    metadata: dict[str, str],
    tags: list[str],
) -> DriftAnalysis:
    """Run the report of ``window`` against ``reference`` and read its verdicts.

    Args:
        reference: Reference rows: the features and ``risk_score``.
        window: Window rows: the same columns (``features`` may be empty: scores only).
        features: The model's features to compare (those in both frames).
        options: Thresholds and methods (``settings.monitoring``).
        timestamp: Time of the snapshot in the workspace (the window's last day).
        metadata: Recorded with the snapshot (model, window, source...).
        tags: Tags of the snapshot.

    Returns:
        The snapshot, the drifted features and their share, each feature's drift score and
        method, the score's drift and PSI, and the quality counts.
    """
    from evidently import Report  # type: ignore[import-untyped,unused-ignore]

    columns = [*features, SCORE_COLUMN]
    definition = _definition(features)
    report = Report(
        _metrics(reference, features, options), metadata=metadata, tags=tags, include_tests=True
    )
    snapshot = report.run(
        _dataset(window[columns], definition),
        _dataset(reference[columns], definition),
        timestamp=timestamp,
    )
    return _read(snapshot, features)


def as_categories(values: pd.Series) -> pd.Series:
    """A flag column as category labels (``"0"``, ``"1"``…); a missing value stays missing.

    Evidently's category counts take ints or strings as labels, never floats, and a column
    with a missing value is float: strings keep both the categories and the gaps.
    """
    text = values.astype("float64").map("{:g}".format)
    return text.where(values.notna(), None).astype(object)


def _definition(features: tuple[str, ...]) -> Any:
    from evidently import DataDefinition  # type: ignore[import-untyped,unused-ignore]

    categorical = [name for name in features if name in CATEGORICAL_FEATURES]
    numerical = [name for name in features if name not in CATEGORICAL_FEATURES]
    return DataDefinition(
        numerical_columns=[*numerical, SCORE_COLUMN], categorical_columns=categorical
    )


def _dataset(frame: pd.DataFrame, definition: Any) -> Any:
    from evidently import Dataset  # type: ignore[import-untyped,unused-ignore]

    frame = frame.reset_index(drop=True)
    for name in definition.categorical_columns or []:
        frame[name] = as_categories(frame[name])
    return Dataset.from_pandas(frame, data_definition=definition)


def _metrics(
    reference: pd.DataFrame, features: tuple[str, ...], options: MonitoringSettings
) -> list[Any]:
    from evidently.metrics import MissingValueCount, ValueDrift  # type: ignore[import-untyped,unused-ignore]
    from evidently.presets import DataDriftPreset, DatasetStats, ValueStats  # type: ignore[import-untyped,unused-ignore]

    metrics: list[Any] = []
    if features:
        metrics.append(
            DataDriftPreset(
                columns=list(features),
                drift_share=options.drift_share,
                method=options.stattest,
                threshold=options.stattest_threshold,
            )
        )
    metrics += [
        ValueDrift(column=SCORE_COLUMN),
        ValueDrift(column=SCORE_COLUMN, method=_PSI, threshold=options.score_drift_psi),
        # DataSummaryPreset is DatasetStats + ValueStats of every column; per feature, the
        # checks below replace ValueStats, whose six distribution plots per column cost more
        # than the drift preset itself (measured in benchmarks/drift_cost.py).
        DatasetStats(),
        ValueStats(column=SCORE_COLUMN),
    ]
    metrics += [MissingValueCount(column=name) for name in features]
    return metrics + list(_range_metrics(reference, features))


def _range_metrics(reference: pd.DataFrame, features: tuple[str, ...]) -> Iterable[Any]:
    """Values outside the reference's range; for flags, categories it never had."""
    from evidently.metrics import OutListValueCount, OutRangeValueCount  # type: ignore[import-untyped,unused-ignore]

    for name in features:
        known = reference[name].dropna()
        if known.empty:
            continue
        if name in CATEGORICAL_FEATURES:
            yield OutListValueCount(column=name, values=sorted(as_categories(known).unique()))
        else:
            yield OutRangeValueCount(column=name, left=float(known.min()), right=float(known.max()))


def _read(snapshot: Any, features: tuple[str, ...]) -> DriftAnalysis:
    """The verdicts and figures of a finished snapshot."""
    content = snapshot.dict()
    scores: dict[str, float] = {}
    methods: dict[str, str] = {}
    prediction_drift = score_psi = None
    quality: dict[str, int] = {"missing": 0, "out_of_range": 0, "new_category": 0}
    for metric in content["metrics"]:
        config, value = metric["config"], metric["value"]
        kind = config["type"].removeprefix(_V2)
        column = config.get("column")
        if kind == "ValueDrift" and column == SCORE_COLUMN:
            if config.get("method") == _PSI:
                score_psi = _number(value)
            else:
                prediction_drift = _number(value)
        elif kind == "ValueDrift" and column in features:
            scores[column] = _number(value) or 0.0
            methods[column] = str(config.get("method"))
        elif kind in _QUALITY and column in features:
            _count(quality, _QUALITY[kind], column, value)
    drifted = _drifted(content["tests"], features)
    share = len(drifted) / len(features) if features else 0.0
    return DriftAnalysis(
        snapshot, drifted, share, scores, methods, prediction_drift, score_psi, quality
    )


_QUALITY = {
    "MissingValueCount": "missing",
    "OutRangeValueCount": "out_of_range",
    "OutListValueCount": "new_category",
}


def _count(quality: dict[str, int], issue: str, column: str, value: Any) -> None:
    count = int(value.get("count", 0) if isinstance(value, dict) else 0)
    key = f"{issue}:{column}"
    if count and key not in quality:  # a metric repeated by a preset counts once
        quality[issue] += count
        quality[key] = count


def _drifted(tests: list[dict[str, Any]], features: tuple[str, ...]) -> list[str]:
    """Features whose drift test failed, in the model's feature order."""
    failed = set()
    for test in tests:
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type") == f"{_V2}ValueDrift" and test.get("status") == "FAIL":
            failed.add(params.get("column"))
    return [name for name in features if name in failed]


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None
