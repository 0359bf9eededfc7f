"""Real services for the integration tests: a single-node Kafka broker (KRaft) on loopback.

The broker's jars are resolved by Maven once and cached in the repository's ``.fraudrisk/jars``
(or ``$FRAUDRISK_JARS_DIR``), shared by every run and by the CLI subprocesses the tests start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraudrisk.config import KafkaSettings
from fraudrisk.io.jars import JARS_DIR_ENV, resolve_jars
from fraudrisk.io.kafka_broker import LocalKafkaBroker

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def jars_dir() -> Path:
    """The shared jars cache: ``$FRAUDRISK_JARS_DIR`` or ``<repo>/.fraudrisk/jars``."""
    override = os.environ.get(JARS_DIR_ENV, "").strip()
    return Path(override) if override else REPO_ROOT / ".fraudrisk" / "jars"


@pytest.fixture(scope="session")
def kafka_broker(jars_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Kafka broker on free 127.0.0.1 ports for the whole session; yields its bootstrap."""
    broker = LocalKafkaBroker(resolve_jars("kafka", jars_dir))
    bootstrap = broker.start(data_dir=tmp_path_factory.mktemp("kafka"))
    try:
        yield bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def spark(jars_dir: Path) -> Iterator[object]:
    """One local Spark session for every integration test, with the Kafka connector jars."""
    from fraudrisk.features.spark import get_spark

    session = get_spark(
        "local[2]", "fraudrisk-tests", jars=[str(j) for j in resolve_jars("spark-kafka", jars_dir)]
    )
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture()
def kafka_settings(kafka_broker: str) -> KafkaSettings:
    """Default Kafka settings pointed at the session broker."""
    return KafkaSettings(bootstrap_servers=kafka_broker)


# --- Redis (Feast online store) -------------------------------------------------------------

REDIS_SERVER = "redis-server"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A throw-away ``redis-server`` on a free loopback port; yields ``127.0.0.1:PORT``."""
    import shutil
    import subprocess
    import time

    binary = shutil.which(REDIS_SERVER)
    if binary is None:
        pytest.fail("redis-server is not on PATH: `apt-get install -y redis-server` (make does)")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--save", "", "--appendonly", "no", "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not _redis_answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not answer PING on port {port}")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- PostgreSQL (Optuna storage, MLflow backend, alert store, cases) ------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL cluster; yields ``postgresql://fraudrisk@127.0.0.1:PORT``.

    Databases ``optuna``, ``mlflow`` and ``alerts`` exist; append ``/<database>`` to the URL.
    """
    from fraudrisk.io.local_postgres import PostgresUnavailableError, local_postgres

    try:
        with local_postgres(("optuna", "mlflow", "alerts")) as url:
            yield url
    except PostgresUnavailableError as error:
        pytest.fail(str(error))
