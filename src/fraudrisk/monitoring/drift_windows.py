"""The rows of a drift window: from the feature table (scored now) or from the score records.

* ``lake`` — the feature table's rows of days ``start..end``, scored with the model now, so the
  window has both its inputs and its predictions whatever was served at the time.
* ``scores`` — the score records the stream scorer and the API wrote to the alert store for
  those days, by the model's version (fallback decisions carry no model score), joined to the
  feature table by ``transaction_id``. Without feature rows for them the window holds the
  scores only: prediction drift is reported, input drift is not (and the result says so).

A window larger than ``settings.monitoring.max_window_rows`` is sampled with a fixed seed;
``rows`` counts the window, ``sampled`` what the report is computed on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudrisk.config import Settings
from fraudrisk.errors import MonitoringError
from fraudrisk.features.table_rows import (
    earliest_and_latest,
    read_feature_days,
    sample_rows,
    table_days,
)
from fraudrisk.monitoring.results import Source
from fraudrisk.registry.references import SCORE_COLUMN
from fraudrisk.scoring.model import LoadedModel

#: Seed of a window's sample: the same window gives the same rows.
WINDOW_SEED = 7


@dataclass(frozen=True)
class Window:
    """The rows a drift report compares with the reference."""

    source: Source
    start: dt.date
    end: dt.date
    rows: pd.DataFrame
    """Sampled rows: ids, the model's features (unless ``with_features`` is false), score."""
    total_rows: int
    with_features: bool
    rows_without_features: int = 0

    @property
    def sampled(self) -> int:
        """Rows the report is computed on."""
        return len(self.rows)


def read_window(
    settings: Settings,
    model: LoadedModel,
    source: Source,
    start: dt.date,
    end: dt.date,
    table_uri: str,
) -> Window:
    """The window's rows from ``source`` (see the module docstring).

    Raises:
        MonitoringError: If the window is empty or its source cannot be read.
    """
    if source == "lake":
        return lake_window(settings, model, start, end, table_uri)
    if source == "scores":
        return scores_window(settings, model, start, end, table_uri)
    raise MonitoringError(f"unknown source {source!r}: use lake or scores")


def lake_window(
    settings: Settings, model: LoadedModel, start: dt.date, end: dt.date, table_uri: str
) -> Window:
    """The feature table's rows of ``start..end``, sampled, scored with ``model``."""
    rows = read_feature_days(settings, table_uri, start, end, model.feature_names)
    if rows.empty:
        days = earliest_and_latest(table_days(table_uri, settings))
        raise MonitoringError(
            f"no feature rows in {start}..{end} (the table at {table_uri} holds {days})"
        )
    sample = sample_rows(rows, settings.monitoring.max_window_rows, WINDOW_SEED)
    matrix = sample[list(model.feature_names)].to_numpy(np.float32)
    sample[SCORE_COLUMN] = np.asarray(model.probability(matrix), dtype=np.float64)
    return Window("lake", start, end, sample, len(rows), with_features=True)


def scores_window(
    settings: Settings, model: LoadedModel, start: dt.date, end: dt.date, table_uri: str
) -> Window:
    """The model version's score records of ``start..end``, joined to their feature rows."""
    records = read_score_records(settings.db_url, start, end, model.card.version)
    sample = sample_rows(records, settings.monitoring.max_window_rows, WINDOW_SEED)
    if not table_days(table_uri, settings):
        return _scores_only(sample, start, end, len(records))
    features = read_feature_days(settings, table_uri, start, end, model.feature_names)
    joined = sample[["transaction_id", SCORE_COLUMN]].merge(
        features.drop(columns=["tx_datetime"]), on="transaction_id", how="inner"
    )
    if joined.empty:
        return _scores_only(sample, start, end, len(records))
    joined = joined.merge(sample[["transaction_id", "tx_datetime"]], on="transaction_id")
    columns = ["transaction_id", "tx_datetime", *model.feature_names, SCORE_COLUMN]
    return Window(
        "scores",
        start,
        end,
        joined[columns],
        len(records),
        with_features=True,
        rows_without_features=len(sample) - len(joined),
    )


def _scores_only(sample: pd.DataFrame, start: dt.date, end: dt.date, total: int) -> Window:
    rows = sample[["transaction_id", "tx_datetime", SCORE_COLUMN]]
    return Window("scores", start, end, rows, total, False, rows_without_features=len(rows))


def read_score_records(db_url: str, start: dt.date, end: dt.date, version: str) -> pd.DataFrame:
    """The model scores one version gave to the transactions of ``start..end``.

    Args:
        db_url: The alert store's database.
        start: First day (of ``tx_datetime``, UTC).
        end: Last day, inclusive.
        version: The model version whose records to read.

    Returns:
        ``transaction_id``, ``tx_datetime`` and ``risk_score``, by id.

    Raises:
        MonitoringError: If that version scored no transaction of the window.
    """
    import sqlalchemy as sa  # deferred: sqlalchemy (≈0.2 s) only for the scores source

    from fraudrisk.alerts.store import SCORES, AlertStore

    store = AlertStore(db_url)
    in_window = sa.and_(
        SCORES.c.tx_datetime >= dt.datetime.combine(start, dt.time()),
        SCORES.c.tx_datetime < dt.datetime.combine(end + dt.timedelta(days=1), dt.time()),
        SCORES.c.fallback.is_(False),
    )
    columns = [SCORES.c.transaction_id, SCORES.c.tx_datetime]
    query = sa.select(*columns, SCORES.c.risk_score.label(SCORE_COLUMN)).where(
        in_window, SCORES.c.model_version == version
    )
    try:
        with store.engine.connect() as connection:
            records = pd.DataFrame(connection.execute(query.order_by(SCORES.c.transaction_id)))
            if records.empty:
                versions = connection.execute(
                    sa.select(SCORES.c.model_version).where(in_window).distinct()
                ).scalars()
                raise MonitoringError(_no_records(start, end, version, sorted(versions)))
    finally:
        store.close()
    records["tx_datetime"] = pd.to_datetime(records["tx_datetime"])
    return records


def _no_records(start: dt.date, end: dt.date, version: str, others: list[str]) -> str:
    found = f"records of version(s) {', '.join(others)} only" if others else "no score record"
    return f"version {version} scored no transaction in {start}..{end}: the store holds {found}"
