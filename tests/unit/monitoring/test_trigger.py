"""The retraining trigger: once per cause per cool-down, durable across restarts and races."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from tests.unit.monitoring.trigger_fixtures import (
    T0,
    Clock,
    RecordingLauncher,
    RecordingTagger,
    decide_at_once,
    drift,
    performance,
)

from fraudrisk.config import Settings
from fraudrisk.monitoring.ledger import FAILED, FIRED, NO_TRIGGER, SUPPRESSED, Cause, TriggerLedger
from fraudrisk.monitoring.trigger import CAUSE_TAG, REPORT_TAG, RetrainingTrigger, TriggerOptions
from fraudrisk.training.launch import LaunchResult


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'platform.db'}"


def make_trigger(
    tmp_path: Path,
    launcher: Any,
    clock: Clock | None = None,
    cooldown_hours: float = 168.0,
    tagger: Any = None,
) -> RetrainingTrigger:
    """A trigger over the SQLite ledger in ``tmp_path`` (a new one = a restarted watcher)."""
    settings = Settings(home=tmp_path / "home")
    ledger = TriggerLedger(db_url(tmp_path), clock=clock or Clock())
    options = TriggerOptions(cooldown_hours=cooldown_hours)
    return RetrainingTrigger(
        settings, ledger, options, launcher=launcher, tagger=tagger or RecordingTagger()
    )


def test_an_undrifted_result_is_recorded_and_launches_nothing(tmp_path: Path) -> None:
    launcher = RecordingLauncher()
    trigger = make_trigger(tmp_path, launcher)
    decision = trigger.decide(drift(False), "/reports/drift.html")
    assert decision.outcome == NO_TRIGGER and launcher.configs == []
    assert decision.evidence["drift_share"] == 0.05
    assert [d.outcome for d in trigger.ledger.decisions()] == [NO_TRIGGER]


def test_a_drifted_result_fires_training_through_the_gates_and_tags_the_version(
    tmp_path: Path,
) -> None:
    launcher, tagger = RecordingLauncher(), RecordingTagger()
    trigger = make_trigger(tmp_path, launcher, tagger=tagger)
    weighted = drift(True).model_copy(update={"weighted_drift_share": 0.62})
    decision = trigger.decide(weighted, "/reports/drift.html")
    assert decision.outcome == FIRED and decision.cause == Cause("fraud-risk", "drift")
    assert (decision.run_id, decision.run_state, decision.registered_version) == (
        "run-1",
        "SUCCEEDED",
        "1",
    )
    assert decision.report == "/reports/drift.html" and decision.decided_at == T0
    assert decision.evidence["drifted_features"] == ["amount_mean_1d", "terminal_risk_7d"]
    assert decision.evidence["weighted_drift_share"] == 0.62
    assert decision.evidence["drift_verdict"] == weighted.drift_verdict
    (config,) = launcher.configs
    assert config.bootstrap is False  # never straight to champion
    assert tagger.tags["1"][CAUSE_TAG] == "drift"
    assert tagger.tags["1"][REPORT_TAG] == "/reports/drift.html"


def test_bootstrap_is_forced_off_even_when_the_training_config_turns_it_on(
    tmp_path: Path,
) -> None:
    config_file = tmp_path / "training.yaml"
    config_file.write_text("n_trials: 2\nbootstrap: true\n")
    launcher = RecordingLauncher()
    trigger = make_trigger(tmp_path, launcher)
    trigger.options = TriggerOptions(cooldown_hours=1, training_config=config_file)
    trigger.decide(drift(True), "/r.html")
    assert launcher.configs[0].n_trials == 2 and launcher.configs[0].bootstrap is False


def test_one_run_per_cause_per_cooldown(tmp_path: Path) -> None:
    clock, launcher = Clock(), RecordingLauncher()
    trigger = make_trigger(tmp_path, launcher, clock, cooldown_hours=24)
    assert trigger.decide(drift(True), "/r1.html").outcome == FIRED
    clock.advance(hours=23, minutes=59)
    suppressed = trigger.decide(drift(True), "/r2.html")
    assert suppressed.outcome == SUPPRESSED and "decision 1 (fired)" in suppressed.detail
    assert len(launcher.configs) == 1
    clock.advance(minutes=1)  # the cool-down is over: the drift still there fires again
    again = trigger.decide(drift(True), "/r3.html")
    assert again.outcome == FIRED and again.report == "/r3.html"
    assert len(launcher.configs) == 2
    outcomes = [d.outcome for d in trigger.ledger.decisions(Cause("fraud-risk", "drift"))]
    assert outcomes == [FIRED, SUPPRESSED, FIRED]


def test_a_restarted_watcher_does_not_fire_twice(tmp_path: Path) -> None:
    launcher = RecordingLauncher()
    first = make_trigger(tmp_path, launcher)
    assert first.decide(drift(True), "/r.html").outcome == FIRED
    first.ledger.close()
    restarted = make_trigger(tmp_path, launcher, Clock(T0 + dt.timedelta(hours=1)))
    assert restarted.decide(drift(True), "/r.html").outcome == SUPPRESSED
    assert len(launcher.configs) == 1


def race(tmp_path: Path, ledger_type: type[TriggerLedger], watchers: int = 4) -> list[str]:
    """``watchers`` triggers (one engine each) decide about the same drift at once."""
    launcher = RecordingLauncher(delay_s=0.2)
    triggers = [make_trigger(tmp_path, launcher) for _ in range(watchers)]
    for trigger in triggers:
        trigger.ledger = ledger_type(db_url(tmp_path), Clock())
    outcomes = decide_at_once(triggers, drift(True), "/r.html")
    assert len(launcher.configs) == outcomes.count(FIRED)
    return sorted(outcomes)


def test_two_watchers_racing_fire_once(tmp_path: Path) -> None:
    assert race(tmp_path, TriggerLedger) == [FIRED] + [SUPPRESSED] * 3


def test_two_causes_fire_independently(tmp_path: Path) -> None:
    launcher = RecordingLauncher()
    trigger = make_trigger(tmp_path, launcher)
    assert trigger.decide(drift(True), "/d.html").outcome == FIRED
    assert trigger.decide(performance(True), "/p.json").outcome == FIRED
    other = drift(True, model_uri="models:/fraud-risk-eu@champion")
    assert trigger.decide(other, "/eu.html").outcome == FIRED
    assert trigger.decide(drift(True), "/d2.html").outcome == SUPPRESSED
    assert trigger.decide(performance(True), "/p2.json").outcome == SUPPRESSED
    assert trigger.decide(performance(False), "/p3.json").outcome == NO_TRIGGER
    assert len(launcher.configs) == 3
    fired = trigger.ledger.decisions(outcome=FIRED)
    assert {(d.cause.model_name, d.cause.kind) for d in fired} == {
        ("fraud-risk", "drift"),
        ("fraud-risk", "performance"),
        ("fraud-risk-eu", "drift"),
    }
    assert fired[1].evidence["drop"] == pytest.approx(0.4)


def test_a_failed_launch_is_recorded_and_does_not_burn_the_cooldown(tmp_path: Path) -> None:
    clock, launcher = Clock(), RecordingLauncher(fail_first=1)
    trigger = make_trigger(tmp_path, launcher, clock)
    failed = trigger.decide(drift(True), "/r.html")
    assert failed.outcome == FAILED and "status FAILURE" in failed.detail
    assert failed.registered_version is None
    clock.advance(hours=1)  # the next check retries
    retried = trigger.decide(drift(True), "/r.html")
    assert retried.outcome == FIRED and retried.registered_version == "2"
    clock.advance(hours=1)
    assert trigger.decide(drift(True), "/r.html").outcome == SUPPRESSED
    assert len(launcher.configs) == 2


def test_a_run_that_ends_failed_releases_the_claim_too(tmp_path: Path) -> None:
    launcher = RecordingLauncher(state="FAILED")
    trigger = make_trigger(tmp_path, launcher)
    first = trigger.decide(drift(True), "/r.html")
    assert first.outcome == FAILED and first.run_id == "run-1" and "FAILED" in first.detail
    assert trigger.decide(drift(True), "/r.html").outcome == FAILED
    assert len(launcher.configs) == 2


def test_a_model_the_gate_rejected_keeps_the_cooldown(tmp_path: Path) -> None:
    launcher, tagger = RecordingLauncher(version=False), RecordingTagger()
    trigger = make_trigger(tmp_path, launcher, tagger=tagger)
    fired = trigger.decide(drift(True), "/r.html")
    assert fired.outcome == FIRED and fired.registered_version is None
    assert "gate rejected" in fired.detail and tagger.tags == {}
    assert trigger.decide(drift(True), "/r.html").outcome == SUPPRESSED


def test_a_failing_tagger_still_records_the_run(tmp_path: Path) -> None:
    def tagger(version: str, tags: dict[str, str]) -> None:
        raise ConnectionError("registry down")

    trigger = make_trigger(tmp_path, RecordingLauncher(), tagger=tagger)
    decision = trigger.decide(drift(True), "/r.html")
    assert decision.outcome == FIRED and decision.registered_version == "1"
    assert "registry down" in decision.detail


class InMemoryFlagLedger(TriggerLedger):
    """Negative control: fire-once kept in the object, not in the database."""

    def __init__(self, url: str, clock: Any) -> None:
        super().__init__(url, clock)
        self.fired: set[Cause] = set()

    def _claim(self, connection: Any, cause: Cause, now: Any, cutoff: Any) -> bool:
        granted = cause not in self.fired
        self.fired.add(cause)
        return granted


def test_negative_control_an_in_memory_flag_fires_twice_across_a_restart(
    tmp_path: Path,
) -> None:
    launcher = RecordingLauncher()
    outcomes = []
    for _restart in range(2):
        ledger = InMemoryFlagLedger(db_url(tmp_path), Clock())
        trigger = RetrainingTrigger(
            Settings(home=tmp_path),
            ledger,
            TriggerOptions(cooldown_hours=168),
            launcher=launcher,
            tagger=RecordingTagger(),
        )
        outcomes.append(trigger.decide(drift(True), "/r.html").outcome)
        ledger.close()
    # The property the real ledger keeps (one run per cool-down) is violated: the test above
    # (test_a_restarted_watcher_does_not_fire_twice) would fail on this ledger.
    assert outcomes == [FIRED, FIRED] and len(launcher.configs) == 2


def test_negative_control_racing_watchers_with_in_memory_flags_all_fire(tmp_path: Path) -> None:
    assert race(tmp_path, InMemoryFlagLedger) == [FIRED] * 4


def test_the_ledger_refuses_other_databases() -> None:
    with pytest.raises(ValueError, match="SQLite and PostgreSQL"):
        TriggerLedger("mysql+pymysql://u@localhost/db")


def test_the_real_tagger_tags_the_registered_version_in_mlflow(tmp_path: Path) -> None:
    from fraudrisk.registry.mlflow_io import mlflow_client

    settings = Settings(home=tmp_path / "home")
    client = mlflow_client(settings)

    def launch(config: Any) -> LaunchResult:  # the pipeline's register step, in short
        client.create_registered_model("fraud-risk")
        source = tmp_path / "model"
        source.mkdir()
        version = client.create_model_version("fraud-risk", str(source))
        return LaunchResult(
            where="local",
            state="SUCCEEDED",
            version=str(version.version),
            seconds=1.0,
            task_log=tmp_path / "task.log",
        )

    ledger = TriggerLedger(db_url(tmp_path))
    trigger = RetrainingTrigger(settings, ledger, TriggerOptions(cooldown_hours=1), launcher=launch)
    decision = trigger.decide(performance(True), "/reports/performance.json")
    assert decision.outcome == FIRED and decision.run_id == f"local:{tmp_path / 'task.log'}"
    tags = client.get_model_version("fraud-risk", "1").tags
    assert tags[CAUSE_TAG] == "performance"
    assert tags[REPORT_TAG] == "/reports/performance.json"
    assert ledger.decisions()[0].evidence["model_version"] == "3"
