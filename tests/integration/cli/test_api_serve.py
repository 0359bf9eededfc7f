"""`fraudrisk api serve` in a child process: answers on loopback, never logs a card number."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from tests.unit.api.helpers import TEST_PAN, TOKEN_KEY, transaction

from fraudrisk.api.auth import hash_api_key

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_serve_answers_on_loopback_and_never_logs_the_pan(tmp_path: Path) -> None:
    port, key = _free_port(), "frk_serve-test-key"
    env = os.environ | {
        "FRAUDRISK_HOME": str(tmp_path),
        "FRAUDRISK_API__KAFKA_ENABLED": "false",
        "FRAUDRISK_API__PAN_TOKEN_KEY": TOKEN_KEY,
        "FRAUDRISK_API__MODEL_RETRY_S": "600",
        "FRAUDRISK_API__KEYS": json.dumps([{"client": "cli", "key_hash": hash_api_key(key)}]),
    }
    log = (tmp_path / "server.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "fraudrisk", "api", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server)
        with httpx.Client(base_url=base, timeout=10) as client:
            scored = client.post(
                "/v1/transactions",
                json=transaction(pan=TEST_PAN),
                headers={"X-API-Key": key},
                params={"pan": TEST_PAN},
            )
            invalid = client.post(
                "/v1/transactions",
                headers={"X-API-Key": key},
                json=transaction(pan=TEST_PAN, tx_amount=-1),
            )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert scored.status_code == 200 and scored.json()["fallback"] is True
    assert invalid.status_code == 422
    log.seek(0)
    text = log.read()
    assert "POST /v1/transactions 200 client=cli" in text  # the access log is there
    assert TEST_PAN not in text


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError("the API did not become ready")
