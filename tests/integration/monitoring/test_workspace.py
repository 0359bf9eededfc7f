"""``fraudrisk monitor ui`` in a child process: serves the project, stops with its parent."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest
from tests.unit.monitoring.monitored import Monitored

from fraudrisk.monitoring.results import DriftResult

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_monitor_ui_serves_the_models_project_and_stops_with_its_parent(
    monitored: Monitored, quiet: DriftResult
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"FRAUDRISK_HOME": str(monitored.settings.home)}
    command = [sys.executable, "-m", "fraudrisk", "monitor", "ui", "--port", str(port)]
    parent = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/api/projects"
    try:
        projects = wait_for_json(url, timeout_s=120)
        assert [project["name"] for project in projects] == ["fraud-risk"]
    finally:
        parent.terminate()
        parent.wait(timeout=30)
    assert parent.stdout is not None and f"http://127.0.0.1:{port}" in parent.stdout.read()
    with pytest.raises(OSError):  # the service went with it
        urllib.request.urlopen(url, timeout=5)


def wait_for_json(url: str, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
