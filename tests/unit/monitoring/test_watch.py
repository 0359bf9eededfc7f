"""The watcher: windows, metrics and decisions per round, restarts, signals, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from tests.unit.monitoring.trigger_fixtures import (
    Clock,
    RecordingLauncher,
    RecordingTagger,
    drift,
    performance,
)
from typer.testing import CliRunner

from fraudrisk.cli import monitor_watch
from fraudrisk.config import MonitoringSettings, Settings, get_settings
from fraudrisk.errors import MonitoringError
from fraudrisk.monitoring.checks import Checks, WatchOptions, latest_day
from fraudrisk.monitoring.ledger import FIRED, NO_TRIGGER, SUPPRESSED, TriggerLedger
from fraudrisk.monitoring.prometheus import MonitoringMetrics
from fraudrisk.monitoring.results import DriftResult, PerformanceResult
from fraudrisk.monitoring.trigger import RetrainingTrigger, TriggerOptions
from fraudrisk.monitoring.watch import Watcher

LATEST = dt.date(2018, 9, 30)


class FakeChecks:
    """Check functions answering prepared results, recording their windows."""

    def __init__(self, drifted: bool = False, dropped: bool = False) -> None:
        self.drifted, self.dropped = drifted, dropped
        self.calls: list[tuple[Any, ...]] = []
        self.fail: str | None = None

    def drift(
        self, settings: Settings, uri: str, source: str, start: dt.date, end: dt.date
    ) -> DriftResult:
        self.calls.append(("drift", uri, source, start, end))
        if self.fail == "drift":
            raise MonitoringError("the window 2018-09-24..2018-09-30 has no rows")
        return drift(self.drifted, uri).model_copy(update={"start": start, "end": end})

    def performance(
        self,
        settings: Settings,
        uri: str,
        start: dt.date,
        end: dt.date,
        as_of: dt.date,
        source: str,
    ) -> PerformanceResult:
        self.calls.append(("performance", uri, start, end, as_of, source))
        return performance(self.dropped, uri).model_copy(update={"start": start, "end": end})

    def checks(self) -> Checks:
        return Checks(self.drift, self.performance, lambda settings, source: LATEST)


def watcher_over(
    tmp_path: Path,
    fake: FakeChecks,
    launcher: RecordingLauncher,
    clock: Clock | None = None,
    **options: Any,
) -> Watcher:
    """A watcher over the platform database in ``tmp_path`` (new objects = a restart)."""
    settings = Settings(home=tmp_path / "home", monitoring=MonitoringSettings(label_delay_days=7))
    metrics = MonitoringMetrics()
    ledger = TriggerLedger(f"sqlite:///{tmp_path / 'platform.db'}", clock or Clock())
    trigger = RetrainingTrigger(
        settings,
        ledger,
        TriggerOptions(cooldown_hours=168),
        launcher=launcher,
        tagger=RecordingTagger(),
        metrics=metrics,
    )
    return Watcher(
        settings,
        WatchOptions(model_uri="models:/fraud-risk@champion", **options),
        trigger,
        metrics,
        fake.checks(),
    )


def test_a_quiet_round_checks_the_latest_windows_and_triggers_nothing(tmp_path: Path) -> None:
    fake, launcher = FakeChecks(), RecordingLauncher()
    found = watcher_over(tmp_path, fake, launcher, window_days=7).check_once()
    uri = "models:/fraud-risk@champion"
    assert fake.calls == [
        ("drift", uri, "lake", dt.date(2018, 9, 24), LATEST),
        ("performance", uri, dt.date(2018, 9, 17), dt.date(2018, 9, 23), LATEST, "lake"),
    ]  # the labelled window ends label_delay_days before the latest day
    assert [d.outcome for d in found.decisions] == [NO_TRIGGER, NO_TRIGGER]
    assert launcher.configs == [] and found.errors == {}
    evidence = Path(found.decisions[1].report)  # the performance result, kept as JSON
    assert json.loads(evidence.read_text())["end"] == "2018-09-23"


def test_drift_fires_once_and_a_restarted_watcher_does_not_fire_again(tmp_path: Path) -> None:
    fake, launcher, clock = FakeChecks(drifted=True), RecordingLauncher(), Clock()
    watcher = watcher_over(tmp_path, fake, launcher, clock)
    first = watcher.check_once()
    assert [d.outcome for d in first.decisions] == [FIRED, NO_TRIGGER]
    assert first.decisions[0].report == "/reports/drift.html"
    clock.advance(hours=1)
    assert [d.outcome for d in watcher.check_once().decisions] == [SUPPRESSED, NO_TRIGGER]
    watcher.trigger.ledger.close()
    restarted = watcher_over(tmp_path, fake, launcher, Clock(clock.now + dt.timedelta(hours=2)))
    assert [d.outcome for d in restarted.check_once().decisions] == [SUPPRESSED, NO_TRIGGER]
    assert len(launcher.configs) == 1
    registry = restarted.metrics.registry
    labels = {"model": "fraud-risk", "cause": "drift", "outcome": "suppressed"}
    assert registry.get_sample_value("fraudrisk_retraining_triggers_total", labels) == 1
    assert registry.get_sample_value("fraudrisk_drift_share", {"model": "fraud-risk"}) == 0.5


def test_a_failing_check_is_counted_and_the_other_check_still_runs(tmp_path: Path) -> None:
    fake = FakeChecks(dropped=True)
    fake.fail = "drift"
    watcher = watcher_over(tmp_path, fake, RecordingLauncher())
    found = watcher.check_once()
    assert found.errors == {
        "drift": "MonitoringError: the window 2018-09-24..2018-09-30 has no rows"
    }
    assert [(d.cause.kind, d.outcome) for d in found.decisions] == [("performance", FIRED)]
    labels = {"model": "fraud-risk", "check": "drift"}
    errors = watcher.metrics.registry.get_sample_value
    assert errors("fraudrisk_monitoring_check_errors_total", labels) == 1


def test_sigterm_stops_the_loop_between_rounds(tmp_path: Path) -> None:
    watcher = watcher_over(tmp_path, FakeChecks(), RecordingLauncher(), interval_s=60.0)
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    started = dt.datetime.now()
    rounds = watcher.run()
    assert rounds == 1 and (dt.datetime.now() - started).total_seconds() < 30
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored


def test_run_stops_after_max_rounds(tmp_path: Path) -> None:
    seen: list[int] = []
    watcher = watcher_over(tmp_path, FakeChecks(), RecordingLauncher(), interval_s=0.01)
    assert watcher.run(max_rounds=3, on_round=lambda found: seen.append(len(found.decisions))) == 3
    assert seen == [2, 2, 2]


def test_latest_day_of_an_empty_home_says_what_to_do(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    with pytest.raises(MonitoringError, match="features build"):
        latest_day(settings, "lake")
    with pytest.raises(MonitoringError, match="no scores yet"):
        latest_day(settings, "scores")


def test_watch_options_refuse_an_empty_window() -> None:
    with pytest.raises(ValueError, match="window_days"):
        WatchOptions(model_uri="m", window_days=0)


@pytest.mark.slow
def test_real_drift_reports_trigger_on_the_shifted_window_only(
    monitored: Any, tmp_path: Path
) -> None:
    """Evidently on the shared fixture: its quiet week does not trigger, its shifted one does."""
    from tests.unit.monitoring.monitored import QUIET_DAYS, SHIFT_OFFSET, day

    from fraudrisk.monitoring.drift import drift_report

    launcher, metrics = RecordingLauncher(), MonitoringMetrics()
    ledger = TriggerLedger(f"sqlite:///{tmp_path / 'platform.db'}")
    trigger = RetrainingTrigger(
        monitored.settings,
        ledger,
        TriggerOptions(cooldown_hours=168),
        launcher=launcher,
        tagger=RecordingTagger(),
        metrics=metrics,
    )
    checks = Checks(drift_report, FakeChecks().performance, latest_day)
    outcomes = {}
    for name, end in (("quiet", day(QUIET_DAYS[1])), ("latest", None)):
        options = WatchOptions(model_uri="models:/fraud-risk@champion", end=end)
        found = Watcher(monitored.settings, options, trigger, metrics, checks).check_once()
        assert found.errors == {} and found.drift is not None
        assert Path(found.drift.report).exists()
        outcomes[name] = (found.drift.end, found.decisions[0].outcome)
    assert outcomes == {
        "quiet": (day(QUIET_DAYS[1]), NO_TRIGGER),
        "latest": (day(QUIET_DAYS[1] + SHIFT_OFFSET), FIRED),
    }
    assert len(launcher.configs) == 1
    share = metrics.registry.get_sample_value("fraudrisk_drift_share", {"model": "fraud-risk"})
    assert share is not None and share >= monitored.settings.monitoring.drift_share
    ledger.close()


# --- the command ---------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FRAUDRISK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FRAUDRISK_MONITORING__METRICS_PORT", "0")
    monkeypatch.setenv("COLUMNS", "200")  # the round's table, unabridged
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def cli(fake: FakeChecks, launcher: RecordingLauncher) -> typer.Typer:
    hooks = monitor_watch.WatchHooks(
        checks=fake.checks(), launcher=launcher, tagger=RecordingTagger()
    )
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:  # a group, so ``watch`` stays a sub-command
        ctx.obj = hooks

    app.add_typer(monitor_watch.app)
    return app


def test_watch_once_fires_then_suppresses_from_the_command_line(home: Path) -> None:
    fake, launcher = FakeChecks(drifted=True), RecordingLauncher()
    runner = CliRunner()
    first = runner.invoke(cli(fake, launcher), ["watch", "--once", "--window-days", "3"])
    assert first.exit_code == 0, first.output
    assert "fired (version 1)" in first.output and "drift share 0.50" in first.output
    assert fake.calls[0][3:] == (dt.date(2018, 9, 28), LATEST)
    again = runner.invoke(cli(fake, launcher), ["watch", "--once", "--end", "2018-09-29"])
    assert again.exit_code == 0, again.output
    assert "suppressed" in again.output and fake.calls[-2][4] == dt.date(2018, 9, 29)
    assert len(launcher.configs) == 1
    ledger = TriggerLedger(get_settings().db_url)
    assert [d.outcome for d in ledger.decisions()] == [FIRED, NO_TRIGGER, SUPPRESSED, NO_TRIGGER]
    ledger.close()


def test_watch_once_exits_1_when_a_check_failed(home: Path) -> None:
    fake = FakeChecks()
    fake.fail = "drift"
    result = CliRunner().invoke(cli(fake, RecordingLauncher()), ["watch", "--once"])
    assert result.exit_code == 1
    assert "has no rows" in result.output and "Traceback" not in result.output


def test_watch_help_has_examples(home: Path) -> None:
    result = CliRunner().invoke(cli(FakeChecks(), RecordingLauncher()), ["watch", "--help"])
    assert result.exit_code == 0
    assert "fraudrisk monitor watch --once" in result.output and "--window-days" in result.output
