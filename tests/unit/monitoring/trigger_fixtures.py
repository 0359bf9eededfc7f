"""Test doubles of the retraining trigger: check results, a clock, a launcher and a tagger.

Shared by the trigger's tests on SQLite (``test_trigger.py``) and on PostgreSQL
(``tests/integration/monitoring/test_trigger_postgres.py``), and by the watcher's and metrics'
tests.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from typing import Any

from fraudrisk.monitoring.ledger import CheckResult
from fraudrisk.monitoring.results import DayPerformance, DriftResult, PerformanceResult
from fraudrisk.monitoring.trigger import RetrainingTrigger
from fraudrisk.training.launch import LaunchResult

T0 = dt.datetime(2024, 6, 3, 12, tzinfo=dt.UTC)
MODEL = "models:/fraud-risk@champion"


def drift(drifted: bool, model_uri: str = MODEL, share: float | None = None) -> DriftResult:
    """A drift result as ``drift_report`` returns it; ``drifted`` sets the verdict."""
    features = ["amount_mean_1d", "terminal_risk_7d"] if drifted else []
    return DriftResult(
        model_uri=model_uri,
        model_version="3",
        source="lake",
        start=dt.date(2018, 9, 1),
        end=dt.date(2018, 9, 7),
        rows=10_000,
        sampled_rows=10_000,
        drift_detected=drifted,
        drift_share=share if share is not None else (0.5 if drifted else 0.05),
        drifted_features=features,
        feature_scores={"amount_mean_1d": 0.3 if drifted else 0.01},
        report="/reports/drift.html",
        report_json="/reports/drift.json",
    )


def performance(dropped: bool, model_uri: str = MODEL) -> PerformanceResult:
    """A labelled-performance result; ``dropped`` = AP 40 % under the yardstick."""
    ap = 0.36 if dropped else 0.58
    day = DayPerformance(
        day=dt.date(2018, 8, 31),
        variant="champion",
        model_version="3",
        transactions=9000,
        frauds=60,
        average_precision=ap,
        card_precision_at_k=0.25,
        recall_at_budget=0.5,
    )
    return PerformanceResult(
        model_uri=model_uri,
        model_version="3",
        start=dt.date(2018, 8, 25),
        end=dt.date(2018, 8, 31),
        days=[day],
        average_precision=ap,
        expected_average_precision=0.6,
        drop=(0.6 - ap) / 0.6,
        drop_detected=dropped,
    )


class Clock:
    """A clock the test moves."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class RecordingLauncher:
    """Records each training configuration; answers with a new version (or fails on demand)."""

    def __init__(
        self,
        fail_first: int = 0,
        state: str = "SUCCEEDED",
        delay_s: float = 0.0,
        version: bool = True,
    ) -> None:
        self.configs: list[Any] = []
        self.fail_first, self.state, self.delay_s, self.version = (
            fail_first,
            state,
            delay_s,
            version,
        )
        self._lock = threading.Lock()

    def __call__(self, config: Any) -> LaunchResult:
        with self._lock:
            self.configs.append(config)
            calls = len(self.configs)
        time.sleep(self.delay_s)
        if calls <= self.fail_first:
            raise RuntimeError("Task 'tune' finished with status FAILURE")
        return LaunchResult(
            where="remote",
            host="https://kfp.example",
            run_id=f"run-{calls}",
            state=self.state,
            version=str(calls) if self.version else None,
            seconds=0.1,
        )


class RecordingTagger:
    def __init__(self) -> None:
        self.tags: dict[str, dict[str, str]] = {}

    def __call__(self, version: str, tags: dict[str, str]) -> None:
        self.tags[version] = tags


def decide_at_once(
    triggers: Sequence[RetrainingTrigger], result: CheckResult, report: str
) -> list[str]:
    """Every trigger decides about the same result at the same moment (one thread each).

    Returns:
        The outcomes, in the order the decisions ended.
    """
    start = threading.Barrier(len(triggers))
    outcomes: list[str] = []

    def decide(trigger: RetrainingTrigger) -> None:
        start.wait()
        outcomes.append(trigger.decide(result, report).outcome)

    threads = [threading.Thread(target=decide, args=(trigger,)) for trigger in triggers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes
