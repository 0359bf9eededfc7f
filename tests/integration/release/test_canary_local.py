"""The canary workflow against a real ``fraudrisk serve`` process on loopback.

A small real state (lake → features → Feast online store → two registered XGBoost models) is
served from a copy of the local manifest; the ``fraudrisk canary`` commands rewrite that copy
and the server swaps models in as it changes. Scenario 1: a 30 % canary gets its share, shows
in ``status`` and is promoted (MLflow champion and every answer move to it). Scenario 2: a
canary breaching the latency gate is rolled back by ``canary watch``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.serving import (
    ServingHome,
    build_serving_home,
    scorer_process,
    wait_until_ready,
)
from typer.testing import CliRunner, Result

from fraudrisk.config import get_settings
from fraudrisk.registry.versions import CHAMPION, get_alias_version

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[3]
DAYS = 50


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> ServingHome:
    return build_serving_home(tmp_path_factory.mktemp("canary"), customers=80, days=DAYS)


@pytest.fixture(scope="module")
def manifest(home: ServingHome) -> Path:
    path = home.settings.home / "canary-test" / "inferenceservice.yaml"
    path.parent.mkdir(parents=True)
    shutil.copy(ROOT / "manifests" / "local" / "inferenceservice.yaml", path)
    return path


@pytest.fixture(scope="module")
def server(home: ServingHome, manifest: Path) -> Iterator[str]:
    """``fraudrisk serve --manifest <copy>`` on a free port; its log goes to a file."""
    with scorer_process(home, "--manifest", str(manifest)) as (url, _process):
        wait_until_ready(url, timeout_s=90)
        yield url


class Traffic:
    """Single-transaction V1 requests from the test week; counts the answers by variant."""

    def __init__(self, url: str, home: ServingHome) -> None:
        week = home.frame[home.frame["tx_time_days"] >= DAYS - 7]
        self.rows = week[
            ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
        ].to_dict("records")
        self.client = httpx.Client(base_url=url, timeout=10)
        self.sent = 0
        self.seen: Counter[tuple[str, str]] = Counter()  # (variant, version)

    def one(self) -> dict[str, Any]:
        row = self.rows[self.sent % len(self.rows)]
        self.sent += 1
        instance = {**row, "tx_datetime": row["tx_datetime"].isoformat()}
        response = self.client.post("/v1/models/fraud-risk:predict", json={"instances": [instance]})
        assert response.status_code == 200, response.text
        (prediction,) = response.json()["predictions"]
        self.seen[(prediction["variant"], prediction["model_version"])] += 1
        return dict(prediction)

    def send(self, n: int) -> Counter[tuple[str, str]]:
        return Counter((p["variant"], p["model_version"]) for p in (self.one() for _ in range(n)))

    def until(self, done: Callable[[dict[str, Any]], bool], timeout_s: float = 60) -> None:
        """Send until an answer satisfies ``done`` (the server reloads in the background)."""
        deadline = time.monotonic() + timeout_s
        while not done(self.one()):
            assert time.monotonic() < deadline, f"no such answer in {timeout_s} s: {self.seen}"
            time.sleep(0.02)


@pytest.fixture()
def canary_cli(
    home: ServingHome, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Result]]:
    """``fraudrisk canary <args> --manifest <copy>`` in this process, FRAUDRISK_HOME = home."""
    from fraudrisk.cli.main import app

    monkeypatch.setenv("FRAUDRISK_HOME", str(home.settings.home))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    runner = CliRunner()

    def invoke(*args: str, **gates: str) -> Result:
        for gate, value in gates.items():
            monkeypatch.setenv(f"FRAUDRISK_CANARY__{gate.upper()}", value)
        get_settings.cache_clear()
        return runner.invoke(
            app, ["canary", *args, "--manifest", str(manifest)], terminal_width=120
        )

    yield invoke
    get_settings.cache_clear()


def _other_version(home: ServingHome) -> str:
    return "1" if get_alias_version(home.settings, CHAMPION) == "2" else "2"


def test_canary_gets_its_share_and_is_promoted(
    home: ServingHome, server: str, canary_cli: Callable[..., Result]
) -> None:
    traffic = Traffic(server, home)
    candidate, champion = _other_version(home), get_alias_version(home.settings, CHAMPION)
    assert traffic.send(30) == {("champion", champion): 30}  # before the canary: not counted
    # mechanics under test, not model quality: only the share-independent gates stay strict
    loose = {
        "min_requests": "50",
        "max_score_psi": "100",
        "max_review_rate_change": "1",
        "max_decline_rate_change": "1",
        "max_p99_latency_ms": "1000",
    }
    result = canary_cli("start", "--version", candidate, "--percent", "30", "--endpoint", server)
    assert result.exit_code == 0, result.output
    traffic.seen.clear()
    traffic.until(lambda p: p["variant"] == "canary")  # the server has loaded the canary
    share = traffic.send(400)
    assert set(share) == {("champion", champion), ("canary", candidate)}, share
    k, sd = share[("canary", candidate)], math.sqrt(400 * 0.3 * 0.7)
    assert abs(k - 120) <= 4.5 * sd, f"canary answered {k} of 400 at 30 %"  # P(fail) ≈ 1e-5

    result = canary_cli("status", "--json", **loose)
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["variants"]["champion"]["requests"] == traffic.seen[("champion", champion)]
    assert status["variants"]["canary"]["requests"] == traffic.seen[("canary", candidate)]
    assert status["verdict"] == "pass", status["gates"]

    result = canary_cli("promote", **loose)
    assert result.exit_code == 0, result.output
    assert get_alias_version(home.settings, CHAMPION) == candidate
    traffic.until(lambda p: (p["variant"], p["model_version"]) == ("champion", candidate))
    assert traffic.send(60) == {("champion", candidate): 60}


def test_watch_rolls_back_a_breaching_canary(
    home: ServingHome, server: str, canary_cli: Callable[..., Result]
) -> None:
    traffic = Traffic(server, home)
    candidate, champion = _other_version(home), get_alias_version(home.settings, CHAMPION)
    tight = {"min_requests": "50", "max_p99_latency_ms": "0.01"}  # no model answers in 10 µs
    result = canary_cli("start", "--version", candidate, "--percent", "50", "--endpoint", server)
    assert result.exit_code == 0, result.output
    traffic.until(lambda p: p["variant"] == "canary")
    split = traffic.send(200)  # ≈ 100 each: enough data for a verdict
    assert min(split.values()) >= 50, split

    result = canary_cli("watch", "--interval", "1", "--max-seconds", "20", **tight)
    assert result.exit_code == 3, result.output
    assert "BREACH" in result.output and "rolled back automatically" in result.output
    history = home.settings.home / "serving" / "canary-history.jsonl"
    last = json.loads(history.read_text().splitlines()[-1])
    assert last["action"] == "rollback" and "max_p99_latency_ms" in last["reason"]
    assert get_alias_version(home.settings, CHAMPION) == champion  # rollback keeps the alias

    streak = [0]

    def champion_streak(p: dict[str, Any]) -> bool:
        streak[0] = streak[0] + 1 if p["variant"] == "champion" else 0
        return streak[0] >= 40  # at 50 %, 40 champions in a row by chance: p ≈ 1e-12

    traffic.until(champion_streak)
    assert traffic.send(100) == {("champion", champion): 100}


def _canary_answers_by_worker(folder: Path) -> list[float]:
    """Requests each worker process answered with the canary (its own metrics file)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = []
    for path in folder.glob("counter_*.db"):
        samples = [s for m in MultiProcessCollector.merge([str(path)]) for s in m.samples]
        counts.append(
            sum(
                s.value
                for s in samples
                if s.name == "fraudrisk_requests_total" and s.labels.get("variant") == "canary"
            )
        )
    return counts


def test_every_worker_follows_the_manifest(
    home: ServingHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--workers 2``: each worker watches the manifest; a 100 % canary reaches both."""
    from fraudrisk.cli.main import app

    manifest = tmp_path / "inferenceservice.yaml"
    shutil.copy(ROOT / "manifests" / "local" / "inferenceservice.yaml", manifest)
    metrics = tmp_path / "metrics"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    args = ("--manifest", str(manifest), "--workers", "2")
    with scorer_process(home, *args, env=env, wait=False) as (url, _process):
        wait_until_ready(url, timeout_s=180)
        monkeypatch.setenv("FRAUDRISK_HOME", str(home.settings.home))
        get_settings.cache_clear()
        candidate = _other_version(home)
        start = ["canary", "start", "--version", candidate, "--percent", "100"]
        result = CliRunner().invoke(app, [*start, "--manifest", str(manifest), "--endpoint", url])
        get_settings.cache_clear()
        assert result.exit_code == 0, result.output
        traffic, streak, deadline = Traffic(url, home), 0, time.monotonic() + 120
        while streak < 40:  # a new connection per request: either worker may answer it
            assert time.monotonic() < deadline, f"no 40 canary answers in a row: {traffic.seen}"
            with httpx.Client(base_url=url, timeout=10) as traffic.client:
                streak = streak + 1 if traffic.one()["variant"] == "canary" else 0
    switched = [n for n in _canary_answers_by_worker(metrics) if n > 0]
    assert len(switched) == 2, switched  # both workers loaded the canary and answered with it
