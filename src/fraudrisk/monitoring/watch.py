"""The watcher: every interval, check drift and labelled performance, export metrics, trigger.

Each round runs the two checks of :mod:`fraudrisk.monitoring.checks` on the latest window of
the source, exports each result as Prometheus metrics and hands it to the retraining trigger,
which records a decision and fires at most once per cause per cool-down. A check that fails is
logged and counted (``fraudrisk_monitoring_check_errors_total``); the loop goes on. SIGTERM and
SIGINT end the wait between rounds (a round in progress finishes first). The check functions
are injectable, so the watcher runs on results built directly in tests.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from fraudrisk.config import Settings
from fraudrisk.console import console
from fraudrisk.monitoring.checks import (
    Checks,
    WatchOptions,
    default_checks,
    evidence_path,
    run_drift_check,
    run_performance_check,
)
from fraudrisk.monitoring.ledger import Decision
from fraudrisk.monitoring.prometheus import MonitoringMetrics, model_name
from fraudrisk.monitoring.results import DriftResult, PerformanceResult
from fraudrisk.monitoring.trigger import RetrainingTrigger

log = logging.getLogger(__name__)


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
            "drift": lambda: run_drift_check(
                self.settings, self.options, self.checks, self.metrics
            ),
            "performance": lambda: run_performance_check(
                self.settings, self.options, self.checks, self.metrics
            ),
        }
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

    def run(
        self, max_rounds: int | None = None, on_round: Callable[[Round], None] | None = None
    ) -> int:
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

        previous = {
            signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            yield
        finally:
            for signum, saved in previous.items():
                signal.signal(signum, saved)


def print_round(found: Round) -> None:
    """One table per round: each check's verdict and the trigger's decision."""
    table = Table(title="monitoring round", show_lines=False)
    for column in ("check", "window", "verdict", "decision"):
        table.add_column(column)
    table.add_column("report / error", overflow="fold")  # paths are copied: never cut them
    decisions = {d.cause.kind: d for d in found.decisions}
    if found.drift is not None:
        d = found.drift
        weighted = d.weighted_drift_share if d.drift_verdict == "weighted" else None
        share = (
            f"drift share {d.drift_share:.2f}" if weighted is None else f"weighted {weighted:.2f}"
        )
        verdict = f"{share} ({', '.join(d.drifted_features) or 'none'})"
        table.add_row(
            "drift", f"{d.start}..{d.end}", verdict, _decided(decisions.get("drift")), d.report
        )
    if found.performance is not None:
        p = found.performance
        drop = "n/a" if p.drop is None else f"{p.drop:+.1%}"
        table.add_row(
            "performance",
            f"{p.start}..{p.end}",
            f"AP drop {drop}",
            _decided(decisions.get("performance")),
            decisions["performance"].report if "performance" in decisions else "",
        )
    for check, error in found.errors.items():
        table.add_row(check, "", "[red]failed[/red]", "", error)
    console.print(table)


def _decided(decision: Decision | None) -> str:
    if decision is None:
        return ""
    version = decision.registered_version
    return f"{decision.outcome} (version {version})" if version else decision.outcome
