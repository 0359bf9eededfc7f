"""Delayed-label performance: AP, CP@budget and recall at the alert budget, per day and variant.

Scores come from the alert store (``source="scores"``: what the served variants — champion,
canary — scored, one group per ``variant`` and ``model_version``; rules-only fallback decisions
form their own ``rules`` group) or from the feature table scored with the model now
(``source="lake"``: one variant). Labels come from the lake with the labels table beside it
(analysts' resolutions and chargebacks, each known from its label time) or from the ``labels``
topic (:mod:`fraudrisk.monitoring.labels`); the newest label of a transaction known by the end
of ``as_of`` counts, and ``PerformanceResult.labels`` says how many each source gave. Only days
at least ``label_delay_days`` before ``as_of`` count (every transaction of them is labelled,
not only the alerted ones analysts saw), so the window's end is clipped to that day
(``PerformanceResult.end``).

Per day: AP over the day's transactions; Card Precision@k with k = the alert budget, exactly
as the handbook computes it over the window (cards detected on an earlier day leave the
ranking); recall at the budget = the share of the day's fraudulent cards (not detected
earlier) that are among the ``k`` best-scored cards, i.e. CP@k × k / those cards. The model's
AP over the whole labelled window is compared with its own test-fold AP recorded in MLflow:
a relative drop beyond ``max_performance_drop`` triggers retraining.

Calibration: the decision thresholds assume the risk is a probability, so the model's
reliability curve (10 quantile bins) and expected calibration error (ECE) on the window are
reported too; an ECE above ``max_relative_calibration_error`` × the window's fraud rate raises
the calibration alarm (``calibration_drift_detected``; a metric and an alert rule), which does
not by itself retrain: recalibration is a decision for the risk team and MLOps.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from fraudrisk.config import MODEL_URI, Settings
from fraudrisk.data.labels import LABEL_FRAME_COLUMNS, LabelsTable, newest_labels
from fraudrisk.errors import MonitoringError
from fraudrisk.features.table import NoFeatureTableError, open_dataset, rows_between
from fraudrisk.io.lake import Lake
from fraudrisk.monitoring import labels as label_io
from fraudrisk.monitoring.results import (
    CalibrationBin,
    DayPerformance,
    PerformanceResult,
    Source,
)
from fraudrisk.scoring.model import ModelLoadError, load_model
from fraudrisk.training.metrics import (
    average_precision,
    card_precision_at_k,
    expected_calibration_error,
    reliability_bins,
)
from fraudrisk.vocab import STABLE

if TYPE_CHECKING:
    from fraudrisk.scoring.model import LoadedModel

log = logging.getLogger(__name__)
LabelSource = Literal["lake", "kafka"]
#: The registration run's test-fold mean AP (``training.results.HEADLINE``): the yardstick.
TEST_AP_METRIC = "average_precision"
#: Group of the decisions taken by the fallback rules, whatever variant they stood in for.
RULES_VERSION = "rules"
#: Columns :func:`day_performance` needs.
SCORED_COLUMNS = ("day", "variant", "model_version", "customer_id", "tx_fraud", "risk_score")


def day_performance(scored: pd.DataFrame, budget: int) -> list[DayPerformance]:
    """Per day and per (variant, model version): AP, CP@budget and recall at the budget.

    Args:
        scored: Labelled scored transactions with :data:`SCORED_COLUMNS` (``day`` a date).
        budget: Cards analysts review per day (the ``k`` of CP@k).

    Returns:
        One entry per day and group, sorted by day, variant, version. AP is None on a day
        without fraud; recall is None on a day without a (newly) fraudulent card.
    """
    found: list[DayPerformance] = []
    for (variant, version), group in scored.groupby(["variant", "model_version"], sort=True):
        group = group.assign(tx_time_days=group["day"].map(dt.date.toordinal))
        cards = card_precision_at_k(group, k=budget, score_col="risk_score")
        for ordinal, precision, compromised, (_, rows) in zip(
            cards.days,
            cards.per_day,
            cards.compromised_cards_per_day,
            group.groupby("tx_time_days", sort=True),
            strict=True,
        ):
            frauds = int(rows["tx_fraud"].sum())
            found.append(
                DayPerformance(
                    day=dt.date.fromordinal(ordinal),
                    variant=str(variant),
                    model_version=str(version),
                    transactions=len(rows),
                    frauds=frauds,
                    average_precision=(
                        average_precision(rows["tx_fraud"], rows["risk_score"]) if frauds else None
                    ),
                    card_precision_at_k=precision,
                    # CP@k × k = the fraudulent cards found among the k best-scored ones.
                    recall_at_budget=round(precision * budget) / compromised
                    if compromised
                    else None,
                )
            )
    return sorted(found, key=lambda d: (d.day, d.variant, d.model_version))


def labelled_performance(
    settings: Settings,
    model_uri: str,
    start: dt.date,
    end: dt.date,
    as_of: dt.date,
    source: Source = "scores",
    labels: LabelSource = "lake",
    table_uri: str | None = None,
) -> PerformanceResult:
    """Labelled performance of a model over ``start..end``, as known on ``as_of``.

    Args:
        settings: Platform settings (monitoring thresholds, stores, MLflow, Kafka).
        model_uri: The model whose AP is checked (``models:/fraud-risk@champion``, a version or
            a storage URI); for ``source="lake"`` also the model that scores.
        start: First day of the window.
        end: Last day (clipped to ``as_of`` minus ``label_delay_days``).
        as_of: The day of the check.
        source: ``scores`` (the alert store) or ``lake`` (the feature table, scored now).
        labels: ``lake`` or ``kafka`` (the ``labels`` topic).
        table_uri: Feature table for ``source="lake"``; default HOME/features.

    Returns:
        Per-day results and the window's AP against the model's test-fold AP.

    Raises:
        ValueError: If ``start`` is after ``end`` or a source cannot be read.
        ModelLoadError: If the model cannot be resolved or loaded.
    """
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    if source not in ("scores", "lake") or labels not in ("lake", "kafka"):
        raise ValueError(f"source must be scores or lake, labels lake or kafka: {source}, {labels}")
    monitoring = settings.monitoring
    through = min(end, as_of - dt.timedelta(days=monitoring.label_delay_days))
    version, run_id, model = _resolve(settings, model_uri, load=source == "lake")
    if through < start:
        log.warning(
            "no labelled day in %s..%s as of %s (label delay %d days)",
            start,
            end,
            as_of,
            monitoring.label_delay_days,
        )
        scored = pd.DataFrame(columns=[*SCORED_COLUMNS, "transaction_id"])
    elif model is not None:
        scored = _lake_scores(settings, model, _variant_name(model_uri), start, through, table_uri)
    else:
        scored = _store_scores(settings, start, through)
    labelled = _join_labels(settings, scored, start, through, as_of, labels)
    days = day_performance(labelled, monitoring.alert_budget) if len(labelled) else []
    achieved = _window_average_precision(labelled, version)
    expected = expected_average_precision(settings, run_id)
    drop = (expected - achieved) / expected if achieved is not None and expected else None
    calibration = window_calibration(_models_rows(labelled, version))
    relative = calibration.relative_error
    return PerformanceResult(
        model_uri=model_uri,
        model_version=version,
        start=start,
        end=through,
        days=days,
        average_precision=achieved,
        expected_average_precision=expected,
        drop=drop,
        drop_detected=drop is not None and drop > monitoring.max_performance_drop,
        calibration_error=calibration.error,
        relative_calibration_error=relative,
        calibration_drift_detected=relative is not None
        and relative > monitoring.max_relative_calibration_error,
        reliability=calibration.bins,
        labels=labels_by_source(labelled) if len(labelled) else {},
    )


def _resolve(settings: Settings, uri: str, load: bool) -> tuple[str, str, LoadedModel | None]:
    """The model's version and registration run (and the loaded model when it must score)."""
    match = MODEL_URI.match(uri)
    if load or match is None:
        model = load_model(settings, uri)
        return model.card.version, model.card.run_id, model if load else None
    from mlflow.exceptions import MlflowException  # deferred: mlflow (≈1 s) only for a registry URI

    from fraudrisk.registry.mlflow_io import mlflow_client

    client = mlflow_client(settings)
    try:
        if match["version"]:
            found = client.get_model_version(match["name"], match["version"])
        else:
            found = client.get_model_version_by_alias(match["name"], match["alias"])
    except MlflowException as error:
        raise ModelLoadError(f"cannot resolve {uri}: {error.message}") from error
    return str(found.version), found.run_id or "", None


def _variant_name(uri: str) -> str:
    """The lake source's one variant: the URI's alias (``champion``), else ``model``."""
    match = MODEL_URI.match(uri)
    return match["alias"] if match and match["alias"] else "model"


def expected_average_precision(settings: Settings, run_id: str) -> float | None:
    """The test-fold AP recorded by a version's registration run, or None if not recorded."""
    if not run_id:
        return None
    # deferred: pulls mlflow (≈1 s) only with a run id
    from fraudrisk.registry.mlflow_io import mlflow_client

    value = mlflow_client(settings).get_run(run_id).data.metrics.get(TEST_AP_METRIC)
    return float(value) if value is not None else None


def _models_rows(labelled: pd.DataFrame, version: str) -> pd.DataFrame:
    """The model's rows of the window: its champion rows if served as champion, else all."""
    mine = labelled[labelled["model_version"] == version]
    if (mine["variant"] == STABLE).any():
        mine = mine[mine["variant"] == STABLE]
    return mine


def _window_average_precision(labelled: pd.DataFrame, version: str) -> float | None:
    """The model's AP over the window."""
    mine = _models_rows(labelled, version)
    if not len(mine) or not mine["tx_fraud"].any():
        return None
    return average_precision(mine["tx_fraud"], mine["risk_score"])


@dataclass(frozen=True)
class WindowCalibration:
    """How calibrated the model's risk was on the labelled window."""

    error: float | None = None
    relative_error: float | None = None
    bins: list[CalibrationBin] = field(default_factory=list)


def window_calibration(rows: pd.DataFrame) -> WindowCalibration:
    """The reliability curve and ECE of labelled rows (none without rows or without fraud)."""
    if not len(rows) or not rows["tx_fraud"].any():
        return WindowCalibration()
    curve = reliability_bins(rows["tx_fraud"], rows["risk_score"])
    error = expected_calibration_error(curve)
    bins = [
        CalibrationBin(
            lower=b.lower,
            upper=b.upper,
            count=b.count,
            mean_risk=b.mean_score,
            fraud_rate=b.fraud_rate,
        )
        for b in curve
    ]
    return WindowCalibration(error, error / float(rows["tx_fraud"].mean()), bins)


def _store_scores(settings: Settings, start: dt.date, through: dt.date) -> pd.DataFrame:
    """Score records of the alert store on days ``start..through``."""
    import sqlalchemy as sa  # deferred: sqlalchemy (≈0.15 s) only for the scores source

    from fraudrisk.alerts.store import SCORES, AlertStore

    columns = (
        "transaction_id",
        "customer_id",
        "tx_datetime",
        "risk_score",
        "model_version",
        "variant",
        "fallback",
    )
    query = sa.select(*(SCORES.c[name] for name in columns)).where(
        SCORES.c.tx_datetime >= dt.datetime.combine(start, dt.time()),
        SCORES.c.tx_datetime < dt.datetime.combine(through + dt.timedelta(days=1), dt.time()),
    )
    store = AlertStore(settings.db_url)
    try:
        with store.engine.connect() as connection:
            rows = pd.DataFrame(connection.execute(query).all(), columns=list(columns))
    finally:
        store.close()
    rows.loc[rows["fallback"].astype(bool), "model_version"] = RULES_VERSION
    rows["day"] = pd.to_datetime(rows["tx_datetime"]).dt.date
    return rows.drop(columns=["tx_datetime", "fallback"])


def _lake_scores(
    settings: Settings,
    model: LoadedModel,
    variant: str,
    start: dt.date,
    through: dt.date,
    table_uri: str | None,
) -> pd.DataFrame:
    """The feature table's rows of days ``start..through``, scored with ``model`` now."""
    uri = table_uri or settings.feature_table_uri
    try:
        dataset = open_dataset(uri, settings.lake)
    except NoFeatureTableError as error:
        raise MonitoringError(str(error)) from error
    columns = ["transaction_id", "customer_id", "tx_datetime", *model.feature_names]
    rows = rows_between(dataset, columns, start, through)
    matrix = np.column_stack([rows[name].to_numpy() for name in model.feature_names])
    return pd.DataFrame(
        {
            "transaction_id": rows["transaction_id"].to_numpy(),
            "customer_id": rows["customer_id"].to_numpy(),
            "day": pd.to_datetime(rows["tx_datetime"].to_numpy()).date,
            "variant": variant,
            "model_version": model.card.version,
            "risk_score": model.probability(matrix.astype(np.float32)),
        }
    )


def _join_labels(
    settings: Settings,
    scored: pd.DataFrame,
    start: dt.date,
    through: dt.date,
    as_of: dt.date,
    source: LabelSource,
) -> pd.DataFrame:
    """The scored rows that have a label, with ``tx_fraud`` and the label's ``label_source``.

    The others are counted and logged. Labels are those known by the end of ``as_of``.
    """
    if not len(scored):
        return scored.assign(
            tx_fraud=pd.Series(dtype="int64"), label_source=pd.Series(dtype="object")
        )
    known = known_labels(settings, start, through, as_of, source)
    joined = scored.merge(
        known[["transaction_id", "tx_fraud", "source"]].rename(columns={"source": "label_source"}),
        on="transaction_id",
        how="left",
    )
    missing = int(joined["tx_fraud"].isna().sum())
    if missing:
        log.warning(
            "%d of %d scored transactions have no %s label yet: left out",
            missing,
            len(joined),
            source,
        )
    labelled = joined.dropna(subset=["tx_fraud"])
    return labelled.assign(tx_fraud=labelled["tx_fraud"].astype("int64"))


def known_labels(
    settings: Settings, start: dt.date, through: dt.date, as_of: dt.date, source: LabelSource
) -> pd.DataFrame:
    """Every label known by the end of ``as_of``, the newest per transaction.

    From the ``labels`` topic, or from the lake (its own labels, known after the label delay)
    together with the labels table beside it (analysts' resolutions and chargebacks, known from
    their label time): a later label of a transaction corrects an earlier one.
    """
    if source == "kafka":
        return label_io.kafka_labels(settings, as_of).labels
    lake = Lake.open(settings.lake_uri, settings.lake)
    delay = settings.monitoring.label_delay_days
    given_before = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    given = LabelsTable.beside(lake.storage).read(given_before)
    frames = [label_io.lake_labels(lake, start, through, as_of, delay)]
    if len(given):
        frames.append(given[list(LABEL_FRAME_COLUMNS)])
    return newest_labels(pd.concat(frames, ignore_index=True), given_before)


def labels_by_source(labelled: pd.DataFrame) -> dict[str, int]:
    """How many of the labelled rows each label source gave (``lake``, ``analyst``…)."""
    counts = labelled["label_source"].fillna(label_io.TOPIC_SOURCE).value_counts()
    return {str(name): int(count) for name, count in sorted(counts.items())}
