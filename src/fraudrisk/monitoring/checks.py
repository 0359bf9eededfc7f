"""The checks of one watcher round: the latest windows, drift and labelled performance.

Each round takes the latest window of the source — its last ``window_days`` days, ending on the
latest day the lake (or the score store) holds — and runs two checks against the model:

- drift of that window against the model's reference (:mod:`fraudrisk.monitoring.drift`);
- labelled performance over the days whose labels are known by then, i.e. the window shifted
  back by ``monitoring.label_delay_days`` (:mod:`fraudrisk.monitoring.performance`).

Each result is exported as Prometheus metrics; its evidence (the drift report, or the
performance result saved as JSON) is what the retraining trigger records. The check functions
are injectable (:class:`Checks`), so a round runs on results built directly in tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fraudrisk.config import Settings
from fraudrisk.errors import MonitoringError
from fraudrisk.monitoring.prometheus import MonitoringMetrics, model_name
from fraudrisk.monitoring.results import DriftResult, PerformanceResult, Source

#: ``drift_report(settings, model_uri, source, start, end)``.
DriftCheck = Callable[[Settings, str, Source, dt.date, dt.date], DriftResult]
#: ``labelled_performance(settings, model_uri, start, end, as_of, source)``.
PerformanceCheck = Callable[[Settings, str, dt.date, dt.date, dt.date, Source], PerformanceResult]
#: The latest day a source holds.
LatestDay = Callable[[Settings, Source], dt.date]


@dataclass(frozen=True)
class Checks:
    """The functions a round calls (the real ones by :func:`default_checks`)."""

    drift: DriftCheck
    performance: PerformanceCheck
    latest_day: LatestDay


def default_checks() -> Checks:
    """The Evidently drift report and the labelled-performance check of ``fraudrisk``."""
    # deferred: pulls mlflow, evidently, sklearn (≈1.2 s)
    from fraudrisk.monitoring.drift import drift_report
    from fraudrisk.monitoring.performance import labelled_performance

    return Checks(drift_report, labelled_performance, latest_day)


def latest_day(settings: Settings, source: Source) -> dt.date:
    """The last day a source holds.

    ``lake``: the feature table's last ``dt=`` partition (what a drift window of the lake
    reads); ``scores``: the day of the score store's last scored transaction.

    Raises:
        MonitoringError: If the source holds no data yet.
    """
    if source == "lake":
        # deferred: pulls pandas (≈0.3 s) only for the lake source
        from fraudrisk.features.table_rows import table_days

        days = table_days(settings.feature_table_uri, settings)
        if not days:
            raise MonitoringError(
                f"no feature table at {settings.feature_table_uri}: run `fraudrisk features "
                "build` first, or watch --source scores"
            )
        return max(days)
    import sqlalchemy as sa  # deferred: sqlalchemy (≈0.1 s) only for the scores source

    from fraudrisk.alerts.store import SCORES, AlertStore

    store = AlertStore(settings.db_url)
    try:
        with store.engine.connect() as connection:
            last = connection.execute(sa.select(sa.func.max(SCORES.c.tx_datetime))).scalar()
    finally:
        store.close()
    if last is None:
        raise MonitoringError(
            "the score store holds no scores yet: run the stream scorer, or watch --source lake"
        )
    return dt.date.fromisoformat(str(last)[:10])


@dataclass(frozen=True)
class WatchOptions:
    """What the watcher checks and how often."""

    model_uri: str
    source: Source = "lake"
    window_days: int = 7
    interval_s: float = 3600.0
    end: dt.date | None = None
    """Last day of the window; None = the latest day of the source at each round."""

    @classmethod
    def parse(cls, model_uri: str, source: str, window_days: int, end: str) -> WatchOptions:
        """Options from pipeline parameters (plain strings; ``end`` empty = the latest day).

        Raises:
            MonitoringError: If the source is unknown or ``end`` is not ``YYYY-MM-DD``.
        """
        if source not in ("lake", "scores"):
            raise MonitoringError(f"unknown source {source!r}: use lake or scores")
        try:
            last = dt.date.fromisoformat(end) if end else None
        except ValueError:
            raise MonitoringError(f"end {end!r} is not a date (YYYY-MM-DD)") from None
        return cls(model_uri, source, window_days, end=last)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if self.window_days < 1:
            raise ValueError(f"window_days must be ≥ 1, not {self.window_days}")
        if self.interval_s <= 0:
            raise ValueError(f"the interval must be > 0 seconds, not {self.interval_s}")


def drift_window(end: dt.date, window_days: int) -> tuple[dt.date, dt.date]:
    """The drift window: the ``window_days`` days ending on ``end``."""
    return end - dt.timedelta(days=window_days - 1), end


def labelled_window(as_of: dt.date, window_days: int, delay_days: int) -> tuple[dt.date, dt.date]:
    """The labelled window: ``window_days`` days ending ``delay_days`` before ``as_of``."""
    return drift_window(as_of - dt.timedelta(days=delay_days), window_days)


def run_drift_check(
    settings: Settings, options: WatchOptions, checks: Checks, metrics: MonitoringMetrics
) -> DriftResult:
    """Check drift on the latest window and export the result."""
    end = options.end or checks.latest_day(settings, options.source)
    start, end = drift_window(end, options.window_days)
    result = checks.drift(settings, options.model_uri, options.source, start, end)
    metrics.observe_drift(result)
    return result


def run_performance_check(
    settings: Settings, options: WatchOptions, checks: Checks, metrics: MonitoringMetrics
) -> PerformanceResult:
    """Check labelled performance over the latest labelled window and export the result."""
    as_of = options.end or checks.latest_day(settings, options.source)
    delay = settings.monitoring.label_delay_days
    start, end = labelled_window(as_of, options.window_days, delay)
    result = checks.performance(settings, options.model_uri, start, end, as_of, options.source)
    metrics.observe_performance(result)
    return result


def save_performance(settings: Settings, result: PerformanceResult) -> Path:
    """Write a performance result as JSON in the reports folder: the evidence of a trigger."""
    name = model_name(result.model_uri).replace("/", "_")
    path = (
        settings.monitoring_reports_dir / "performance" / name / f"{result.start}_{result.end}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result.model_dump_json(indent=2))
    return path.resolve()


def evidence_path(settings: Settings, result: DriftResult | PerformanceResult) -> str:
    """Where a result's evidence is: the drift HTML report, or the saved performance JSON."""
    if isinstance(result, DriftResult):
        return result.report
    return str(save_performance(settings, result))
