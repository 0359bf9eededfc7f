"""The registry against a real ``mlflow server`` process (proxied artifacts over HTTP).

The backend store is a parameter of the fixture: SQLite, and PostgreSQL (a real server started
by the test fixtures), as in production on RDS.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fraudrisk.config import MlflowSettings, Settings
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.registry.mlflow_io import mlflow_client
from fraudrisk.registry.versions import (
    CHALLENGER,
    PROBABILITY_COLUMN,
    bootstrap_champion,
    get_alias_version,
    load_pyfunc,
    register_model,
)
from fraudrisk.training.calibrate import calibrate
from fraudrisk.training.gate import gate
from fraudrisk.training.thresholds import choose_thresholds

pytestmark = pytest.mark.integration

MLFLOW = Path(sys.executable).with_name("mlflow")
STARTUP_TIMEOUT_S = 60.0
FEATURES = list(FEATURE_NAMES[:3])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_mlflow_server(backend_store_uri: str, artifacts_dir: Path) -> Iterator[str]:
    """Start ``mlflow server`` on a free loopback port; yield its URL; stop its process group."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log = (artifacts_dir.parent / "mlflow-server.log").open("wb")
    process = subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            backend_store_uri,
            "--serve-artifacts",
            "--artifacts-destination",
            str(artifacts_dir),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (artifacts_dir.parent / "mlflow-server.log").read_text()[-3000:]
                raise RuntimeError(f"mlflow server did not become healthy:\n{tail}")
            time.sleep(0.3)
        yield url
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (uvicorn workers included), SIGKILL if it hangs."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group, if any


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return f"{request.getfixturevalue('postgres_server')}/mlflow"
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture()
def mlflow_server(backend_store_uri: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    with running_mlflow_server(backend_store_uri, artifacts) as url:
        yield url, artifacts


def test_register_and_load_through_the_server(
    mlflow_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, artifacts = mlflow_server
    settings = Settings(home=tmp_path / "home", mlflow=MlflowSettings(tracking_uri=url))
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(800, len(FEATURES))), columns=FEATURES)
    y = (rng.random(800) < 1 / (1 + np.exp(-(2 * x[FEATURES[0]] - 2)))).astype(int).to_numpy()
    model = LogisticRegression().fit(x[:400], y[:400])
    calibrated = calibrate(model, x[400:], y[400:], method="sigmoid")
    metrics = {"average_precision": 0.8, "auc_roc": 0.95, "card_precision@100": 0.4}
    plot = tmp_path / "note.txt"
    plot.write_text("a plot would be here")

    registered = register_model(
        settings,
        calibrated,
        metrics=metrics,
        params={"model": "logistic_regression"},
        artifacts={"plots/note.txt": plot},
        feature_names=FEATURES,
        input_example=x.head(3),
        training_data_ref="test://server",
        thresholds=choose_thresholds(y[400:], calibrated.predict_fraud_probability(x[400:])),
        gate_result=gate(metrics, None),
    )

    assert registered.alias == CHALLENGER
    assert get_alias_version(settings, CHALLENGER) == registered.version
    tags = mlflow_client(settings).get_model_version("fraud-risk", registered.version).tags
    assert tags["feature_service"] == "fraud_scoring_v1"
    loaded = load_pyfunc(settings, "models:/fraud-risk@challenger")
    np.testing.assert_allclose(
        loaded.predict(x)[PROBABILITY_COLUMN].to_numpy(), calibrated.predict_fraud_probability(x)
    )
    bootstrap_champion(settings, registered.version)
    assert get_alias_version(settings, "champion") == registered.version
    # Artifacts went over HTTP to the server's destination, nothing local under HOME.
    assert any(artifacts.rglob("MLmodel"))
    assert any(artifacts.rglob("note.txt"))
    assert not (settings.home / "mlartifacts").exists()
