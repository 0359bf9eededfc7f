"""The trigger ledger on a real PostgreSQL server: one run per cause per cool-down, races too."""

from __future__ import annotations

import pytest
from tests.unit.monitoring import trigger_fixtures as doubles

from fraudrisk.config import Settings
from fraudrisk.monitoring.ledger import FAILED, FIRED, SUPPRESSED, TriggerLedger
from fraudrisk.monitoring.trigger import RetrainingTrigger, TriggerOptions

pytestmark = pytest.mark.integration


def trigger_on(
    url: str, launcher: doubles.RecordingLauncher, clock: doubles.Clock
) -> RetrainingTrigger:
    return RetrainingTrigger(
        Settings(),
        TriggerLedger(url, clock),
        TriggerOptions(24),
        launcher=launcher,
        tagger=doubles.RecordingTagger(),
    )


def test_the_ledger_fires_once_per_cooldown_on_postgres(postgres_server: str) -> None:
    url = postgres_server.replace("postgresql://", "postgresql+psycopg://") + "/alerts"
    clock, launcher = doubles.Clock(), doubles.RecordingLauncher(delay_s=0.2)
    racers = [trigger_on(url, launcher, clock) for _ in range(4)]  # four watchers, one engine each
    outcomes = doubles.decide_at_once(racers, doubles.drift(True), "/r.html")
    assert sorted(outcomes) == [FIRED] + [SUPPRESSED] * 3 and len(launcher.configs) == 1

    restarted = trigger_on(url, doubles.RecordingLauncher(fail_first=1), clock)
    clock.advance(hours=23)
    assert restarted.decide(doubles.drift(True), "/r.html").outcome == SUPPRESSED
    assert restarted.decide(doubles.performance(True), "/p.json").outcome == FAILED  # not burnt:
    assert restarted.decide(doubles.performance(True), "/p.json").outcome == FIRED  # retried
    clock.advance(hours=1)
    assert restarted.decide(doubles.drift(True), "/r.html").outcome == FIRED  # cool-down over
    history = [(d.cause.kind, d.outcome) for d in restarted.ledger.decisions()]
    assert history.count(("drift", FIRED)) == 2 and len(history) == 8
    for trigger in [*racers, restarted]:
        trigger.ledger.close()
