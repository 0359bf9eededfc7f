"""The serving benchmark's tools against our real scorer, on a small state built here.

A small FRAUDRISK_HOME (synthetic lake, features and entity state, Feast applied and
materialised, a small calibrated XGBoost registered as champion); ``python -m serving`` started
on it; the open-loop load generator of ``benchmarks/loadgen.py`` run for ~3 s at a low rate.
The MLServer baseline is not started here (its venv needs downloads); the benchmark script's
refusal of a home without a champion is checked too.
"""

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from benchmarks.loadgen import Command, LoadPlan, ServerGroup, lake_bodies, run_load
from tests.support.serving import ServingHome, build_serving_home

pytestmark = [pytest.mark.slow, pytest.mark.integration]
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ServingHome:
    """A home a scorer can serve: lake, online store with entity state, champion model."""
    return build_serving_home(tmp_path_factory.mktemp("bench-home"), customers=80, days=45)


@pytest.fixture(scope="module")
def home(served: ServingHome) -> Path:
    return served.settings.home


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def scorer(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m serving`` on the home, ready; yields its V2 model URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v2/models/fraud-risk"
    server = Command(
        [sys.executable, "-m", "serving", "--http_port", str(port)],
        {"FRAUDRISK_HOME": str(home)},
        f"{url}/ready",
        REPO_ROOT,
    )
    log = tmp_path_factory.mktemp("scorer-log") / "ours.log"
    with ServerGroup([server], log, ready_timeout_s=180):
        yield url


def test_open_loop_load_against_our_scorer(served: ServingHome, scorer: str) -> None:
    bodies = lake_bodies(served.lake_uri, days=7, limit=500)
    assert len(bodies) > 100
    result = run_load(f"{scorer}/infer", bodies, LoadPlan(rate=40, duration_s=3, warmup_s=1))
    summary = result.summary()
    assert summary["measured"] == 120
    assert summary["errors"] == 0, result.errors
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"] < 5_000
    assert 30 <= summary["achieved_rps"] <= 50  # open loop: the schedule, not the server, sets it


def test_bad_answers_are_counted_as_errors(scorer: str) -> None:
    result = run_load(f"{scorer}/infer", [b'{"inputs": []}'], LoadPlan(20, 1, warmup_s=0.5))
    assert result.errors == {"HTTP 400": 20}
    assert len(result.ok) == 0


def test_benchmark_refuses_a_home_without_a_champion(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "benchmarks" / "serving_latency.py"),
            "--home",
            str(tmp_path),
            "--quick",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2
    assert "make demo" in done.stderr
    assert not (tmp_path / "bench").exists()


def test_the_stage_breakdown_times_the_served_path(
    served: ServingHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report's "where our time goes" stages run on a real home, the whole app included."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    import serving_latency

    bodies = lake_bodies(served.lake_uri, days=7, limit=80)
    stages = serving_latency.stage_times(served.settings, bodies)
    assert isinstance(stages, dict), stages
    assert len(stages) == 6 and "whole app, in-process (ScorerApp + KServe, no network)" in stages
    for name, seconds in stages.items():
        assert len(seconds) == len(bodies) - 8, name
        assert 0 < float(np.median(seconds)) < 0.1, name
    rows = serving_latency.stage_rows(stages, {})
    assert any(row.startswith("| sum of the stages |") for row in rows)
