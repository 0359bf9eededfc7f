"""The stream scorer's loop: an idle exit only once the log end is confirmed.

No Kafka here (the loop's decisions alone, with the consumer calls replaced); the same property
against a real broker that is down longer than the idle exit is in the reliability tests.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from fraudrisk.config import Settings
from fraudrisk.jobs import stream_job as scorer_module
from fraudrisk.jobs.prometheus import StreamMetrics
from fraudrisk.jobs.stream_job import StreamJob, StreamOptions


def idle_scorer(monkeypatch: pytest.MonkeyPatch, answers: list[bool]) -> list[bool]:
    """Run the loop on a topic that delivers nothing; ``caught_up`` answers in turn."""
    asked: list[bool] = []

    def caught_up(_consumer: Any) -> bool:
        asked.append(answers[len(asked)])
        return asked[-1]

    def poll_batch(_consumer: Any, _timeout_s: float, _size: int) -> list[Any]:
        return []

    monkeypatch.setattr(scorer_module, "caught_up", caught_up)
    monkeypatch.setattr(scorer_module, "poll_batch", poll_batch)
    options = StreamOptions(idle_exit_s=0.05)
    metrics = StreamMetrics(CollectorRegistry())
    scorer = StreamJob(Settings(), None, None, None, options, metrics)  # type: ignore[arg-type]
    scorer._assigned = True
    # Idle time passes in the idle work (a garbage collection), not only while polling.
    scorer._collect_while_idle = lambda: time.sleep(0.02)  # type: ignore[method-assign]
    scorer._loop(None, None)  # type: ignore[arg-type]
    return asked


def test_idleness_exits_only_after_the_log_end_is_confirmed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # e.g. the broker is restarting (unknown), then messages are left, then the end is reached
    assert idle_scorer(monkeypatch, [False, False, True]) == [False, False, True]


def test_a_caught_up_scorer_exits_at_the_first_check(monkeypatch: pytest.MonkeyPatch) -> None:
    assert idle_scorer(monkeypatch, [True]) == [True]
