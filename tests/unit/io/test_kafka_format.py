"""The KRaft storage format command survives a cluster id that starts with a dash."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from fraudrisk.io import kafka_broker
from fraudrisk.io.kafka_broker import LocalKafkaBroker


def test_a_cluster_id_starting_with_a_dash_is_passed_as_one_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []

    def run(command: list[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(kafka_broker, "new_cluster_id", lambda: "-dashFirst0123456789abc")
    monkeypatch.setattr(kafka_broker.subprocess, "run", run)
    broker = LocalKafkaBroker(jars=[tmp_path / "kafka.jar"])
    broker.data_dir = tmp_path
    broker._format(tmp_path / "server.properties")
    args = seen[0][seen[0].index("format") + 1 :]
    assert "--cluster-id=-dashFirst0123456789abc" in args  # "-t", "-dash…" would be an option
