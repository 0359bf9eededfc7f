"""A small but real serving state (lake, feature table, Feast online store, registered models)
and a scorer process on a free loopback port, for the serving integration tests.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
from tests.support.data import build_lake
from tests.support.models import register_xgboost

from fraudrisk.config import MlflowSettings, Settings
from fraudrisk.io.kafka_broker import free_port
from fraudrisk.training.dataset import load_frame


@dataclass(frozen=True)
class ServingHome:
    """A FRAUDRISK_HOME ready to serve: champion = version 1, version 2 = challenger."""

    settings: Settings
    table_uri: str
    lake_uri: str
    frame: pd.DataFrame

    @property
    def env(self) -> dict[str, str]:
        """The environment of a process using this home."""
        return {**os.environ, "FRAUDRISK_HOME": str(self.settings.home)}


def build_serving_home(root: Path, customers: int = 120, days: int = 60) -> ServingHome:
    """Lake → features → Feast (SQLite online store, materialised) → two registered models."""
    import datetime as dt

    from fraudrisk.features import feast_store
    from fraudrisk.registry.versions import bootstrap_champion

    table_uri, lake_uri = build_lake(root, customers=customers, days=days)
    settings = Settings(home=root / "home", mlflow=MlflowSettings())
    feast_store.apply(settings, table_uri)
    feast_store.materialize(
        settings, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime.now(dt.UTC)
    )
    frame = load_frame(table_uri, lake_uri)
    train = frame[frame["tx_time_days"] < days - 7]
    bootstrap_champion(settings, register_xgboost(settings, train, seed=0).version)
    register_xgboost(settings, train, seed=1, n_estimators=20)
    return ServingHome(settings, table_uri, lake_uri, frame)


@contextlib.contextmanager
def scorer_process(
    home: ServingHome, *args: str, env: dict[str, str] | None = None, wait: bool = True
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``fraudrisk serve <args>`` on a free port; yields (base URL, process), then stops it."""
    port = free_port()
    command = [sys.executable, "-m", "fraudrisk", "serve", "--http-port", str(port), *args]
    log_path = home.settings.home / f"scorer-{port}.log"  # a file: a pipe would fill and block
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            env={**home.env, **(env or {})},
            text=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    process.log_path = log_path  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    try:
        if wait:
            wait_until_listening(url, process)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_until_listening(url: str, process: subprocess.Popen[str], timeout_s: float = 90) -> None:
    """Wait until the server answers on ``/v2/health/live`` (ready or not)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = process.log_path.read_text()[-3000:]  # type: ignore[attr-defined]
            raise RuntimeError(f"scorer exited {process.returncode}:\n{log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v2/health/live", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"scorer at {url} did not start in {timeout_s} s")


def wait_until_ready(url: str, timeout_s: float = 60) -> None:
    """Wait until ``/v2/models/fraud-risk/ready`` answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v2/models/fraud-risk/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"model at {url} not ready in {timeout_s} s")
