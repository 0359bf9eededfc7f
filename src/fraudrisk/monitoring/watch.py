"""The watcher: every interval, check drift and labelled performance, export metrics, trigger.

Each round takes the latest window of the source — its last ``window_days`` days, ending on the
latest day the lake (or the score store) holds — and runs two checks against the model:

- drift of that window against the model's reference (:mod:`fraudrisk.monitoring.drift`);
- labelled performance over the days whose labels are known by then, i.e. the window shifted
  back by ``monitoring.label_delay_days`` (:mod:`fraudrisk.monitoring.performance`).

Each result is exported as Prometheus metrics and handed to the retraining trigger, which
records a decision and fires at most once per cause per cool-down. A check that fails is logged
and counted (``fraudrisk_monitoring_check_errors_total``); the loop goes on. SIGTERM and SIGINT
end the wait between rounds (a round in progress finishes first). The check functions are
injectable, so the watcher runs on results built directly in tests.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudrisk.config import Settings
from fraudrisk.monitoring.errors import MonitoringError
from fraudrisk.monitoring.metrics import MonitoringMetrics, model_name
from fraudrisk.monitoring.results import DriftResult, PerformanceResult, Source
from fraudrisk.monitoring.trigger import Decision, RetrainingTrigger

log = logging.getLogger(__name__)
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
        from fraudrisk.monitoring.feature_rows import default_table_uri, table_days

        days = table_days(default_table_uri(settings), settings)
        if not days:
            raise MonitoringError(
                f"no feature table at {default_table_uri(settings)}: run `fraudrisk features "
                "build` first, or watch --source scores"
            )
        return max(days)
    import sqlalchemy as sa

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


def run_drift_check(settings: Settings, options: WatchOptions, checks: Checks,
                    metrics: MonitoringMetrics) -> DriftResult:  # fmt: skip
    """Check drift on the latest window and export the result."""
    end = options.end or checks.latest_day(settings, options.source)
    start, end = drift_window(end, options.window_days)
    result = checks.drift(settings, options.model_uri, options.source, start, end)
    metrics.observe_drift(result)
    return result


def run_performance_check(settings: Settings, options: WatchOptions, checks: Checks,
                          metrics: MonitoringMetrics) -> PerformanceResult:  # fmt: skip
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


def check_step(settings: Settings, check: str, options: WatchOptions, result_path: Path,
               textfile: Path | None) -> DriftResult | PerformanceResult:  # fmt: skip
    """One check as a pipeline step: run it, write its result (JSON) and metrics (textfile).

    Raises:
        MonitoringError: If ``check`` is neither ``drift`` nor ``performance``.
    """
    runs: dict[str, Callable[..., DriftResult | PerformanceResult]] = {
        "drift": run_drift_check, "performance": run_performance_check}  # fmt: skip
    if check not in runs:
        raise MonitoringError(f"unknown check {check!r}: use drift or performance")
    metrics = MonitoringMetrics()
    result = runs[check](settings, options, default_checks(), metrics)
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(result.model_dump_json())
    if textfile is not None:
        metrics.write_textfile(textfile)
    return result


def trigger_step(settings: Settings, check: str, result_path: Path, textfile: Path | None,
                 host: str | None = None) -> Decision:  # fmt: skip
    """Let the trigger decide about a check step's result (the KFP monitoring pipeline).

    Raises:
        MonitoringError: If ``check`` is neither ``drift`` nor ``performance``.
    """
    from fraudrisk.monitoring.trigger import TriggerLedger, TriggerOptions

    kinds: dict[str, type[DriftResult | PerformanceResult]] = {
        "drift": DriftResult, "performance": PerformanceResult}  # fmt: skip
    if check not in kinds:
        raise MonitoringError(f"unknown check {check!r}: use drift or performance")
    result = kinds[check].model_validate_json(result_path.read_text())
    metrics, ledger = MonitoringMetrics(), TriggerLedger(settings.db_url)
    options = TriggerOptions.from_settings(settings, **({"host": host} if host else {}))
    try:
        trigger = RetrainingTrigger(settings, ledger, options, metrics=metrics)
        decision = trigger.decide(result, evidence_path(settings, result))
    finally:
        ledger.close()
    if textfile is not None:
        metrics.write_textfile(textfile)
    return decision


def textfile_path(settings: Settings, metrics_dir: str, step: str) -> Path:
    """The step's ``.prom`` file for node-exporter's textfile collector (empty dir = HOME)."""
    folder = Path(metrics_dir) if metrics_dir else settings.home / "monitoring" / "metrics"
    return folder / f"{step}.prom"


@dataclass
class Round:
    """What one round found and decided."""

    drift: DriftResult | None = None
    performance: PerformanceResult | None = None
    decisions: list[Decision] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    """Check name → error message of each check that failed."""


class Watcher:
    """Checks a model every interval and lets the trigger decide about each result."""

    def __init__(
        self,
        settings: Settings,
        options: WatchOptions,
        trigger: RetrainingTrigger,
        metrics: MonitoringMetrics,
        checks: Checks | None = None,
    ) -> None:
        """Bind the watcher to its trigger and metrics; checks default to the real ones."""
        self.settings, self.options = settings, options
        self.trigger, self.metrics = trigger, metrics
        self.checks = checks or default_checks()
        self.rounds = 0
        self.last_round: Round | None = None
        self._stop = threading.Event()

    def check_once(self) -> Round:
        """Run both checks, export their metrics and decide about each result."""
        found = Round()
        steps: dict[str, Callable[[], DriftResult | PerformanceResult]] = {
            "drift": lambda: run_drift_check(self.settings, self.options, self.checks,
                                             self.metrics),
            "performance": lambda: run_performance_check(self.settings, self.options,
                                                         self.checks, self.metrics),
        }  # fmt: skip
        for check, step in steps.items():
            try:
                result = step()
                setattr(found, check, result)
                report = evidence_path(self.settings, result)
                found.decisions.append(self.trigger.decide(result, report))
            except Exception as error:  # a failed check must not stop the watcher
                log.exception("%s check of %s failed", check, self.options.model_uri)
                found.errors[check] = f"{type(error).__name__}: {error}"
                self.metrics.check_failed(model_name(self.options.model_uri), check)
        self.rounds += 1
        self.last_round = found
        return found

    def run(self, max_rounds: int | None = None,
            on_round: Callable[[Round], None] | None = None) -> int:  # fmt: skip
        """Check every ``interval_s`` until stopped (a signal, :meth:`stop` or ``max_rounds``).

        Returns:
            The number of rounds run.
        """
        with self._signals_stop():
            while not self._stop.is_set():
                found = self.check_once()
                if on_round is not None:
                    on_round(found)
                if max_rounds is not None and self.rounds >= max_rounds:
                    break
                self._stop.wait(self.options.interval_s)
        return self.rounds

    def stop(self) -> None:
        """End the loop after the current round (or wake it from its wait)."""
        self._stop.set()

    @contextmanager
    def _signals_stop(self) -> Iterator[None]:
        """SIGTERM/SIGINT stop the loop (main thread only: Python delivers signals there)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: Any) -> None:
            log.info("signal %d: stopping the watcher after this round", signum)
            self.stop()

        previous = {signum: signal.signal(signum, handler)
                    for signum in (signal.SIGTERM, signal.SIGINT)}  # fmt: skip
        try:
            yield
        finally:
            for signum, saved in previous.items():
                signal.signal(signum, saved)
