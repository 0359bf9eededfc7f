"""Launching the training pipeline from Python: configuration, local run, remote submission."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from fraudrisk.config import get_settings
from fraudrisk.training import launch
from fraudrisk.training import pipelines as pipeline_cli

EXECUTING = "10:09:10.878 - INFO - Executing task \x1b[96m'tune'\x1b[0m"
FINISHED = "10:13:03.294 - INFO - Task \x1b[96m'tune'\x1b[0m finished with status SUCCESS"


@pytest.fixture
def relative_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """FRAUDRISK_HOME relative to the working directory, as the embedded default is."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FRAUDRISK_HOME", "rel-home")
    monkeypatch.delenv("FRAUDRISK_LAKE__URI", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "rel-home"
    get_settings.cache_clear()


def fake_versions(monkeypatch: pytest.MonkeyPatch, versions: list[str | None]) -> None:
    """``latest_version`` answers these in turn (before, after the run)."""
    answers = iter(versions)
    monkeypatch.setattr(launch, "latest_version", lambda _settings: next(answers))


def test_training_config_overrides_are_validated_and_none_keeps_the_value() -> None:
    config: Any = launch.training_config(n_trials=2, timeout_s=None, gate={"min_auc_roc": 0.5})
    assert config.n_trials == 2
    assert config.timeout_s == 600.0  # pipelines/configs/training.yaml
    assert config.gate.min_auc_roc == 0.5
    assert config.gate.min_average_precision == 0.6  # other gate fields: the defaults
    with pytest.raises(ValidationError, match="n_trials"):
        launch.training_config(n_trials=0)


def test_local_run_happens_under_home_kfp_with_an_absolute_home(
    relative_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    def run_local(name: str, arguments: dict[str, Any]) -> None:
        seen.update(name=name, cwd=Path.cwd(), home=os.environ["FRAUDRISK_HOME"], args=arguments)
        print(EXECUTING)  # as kfp.local prints: its log lines and the tasks' output
        print('    {"executorInput": "..."}')
        print(FINISHED)

    monkeypatch.setattr(pipeline_cli, "run_local", run_local)
    fake_versions(monkeypatch, [None, "1"])
    result = launch.launch_training(launch.training_config(n_trials=1))
    assert seen["name"] == "training"
    assert seen["cwd"] == relative_home / "kfp"
    assert seen["home"] == str(relative_home)
    assert seen["args"]["table_uri"] == str(relative_home / "features")
    assert seen["args"]["lake_uri"] == str(relative_home / "lake")
    assert os.environ["FRAUDRISK_HOME"] == "rel-home" and Path.cwd() == relative_home.parent
    assert result.where == "local" and result.state == "SUCCEEDED"
    assert result.version == "1"
    assert result.outputs == relative_home / "kfp" / "local_outputs"
    assert result.task_log is not None and result.task_log.parent == relative_home / "kfp" / "logs"
    assert "executorInput" in result.task_log.read_text()
    assert capsys.readouterr().out == f"{EXECUTING}\n{FINISHED}\n"  # progress lines only


def test_no_new_version_means_the_gate_rejected_the_model(
    relative_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_cli, "run_local", lambda name, arguments: None)
    fake_versions(monkeypatch, ["3", "3"])
    assert launch.launch_training(launch.training_config()).version is None


def test_remote_run_is_submitted_awaited_and_read_back(
    relative_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kfp

    calls: list[tuple[str, Any]] = []

    def submit(name: str, arguments: dict[str, Any], host: str) -> str:
        calls.append(("submit", (name, host, arguments["n_trials"])))
        return "run-7"

    class Client:
        def __init__(self, host: str) -> None:
            calls.append(("client", host))

        def wait_for_run_completion(self, run_id: str, timeout: int) -> SimpleNamespace:
            calls.append(("wait", (run_id, timeout)))
            return SimpleNamespace(state="SUCCEEDED")

    monkeypatch.setattr(pipeline_cli, "submit", submit)
    monkeypatch.setattr(kfp, "Client", Client)
    monkeypatch.setattr(
        pipeline_cli, "run_local", lambda *_: pytest.fail("a remote run ran locally")
    )
    fake_versions(monkeypatch, ["1", "2"])
    monkeypatch.setenv(launch.KFP_HOST_ENV, "https://kfp.example")
    host = launch.kfp_host()
    result = launch.launch_training(launch.training_config(n_trials=4), host=host, timeout_s=60)
    assert calls == [
        ("submit", ("training", "https://kfp.example", 4)),
        ("client", "https://kfp.example"),
        ("wait", ("run-7", 60)),
    ]
    assert result.where == "remote" and result.run_id == "run-7"
    assert result.state == "SUCCEEDED" and result.version == "2"
    assert not (relative_home / "kfp").exists()


def test_a_failed_local_run_names_its_task_log(
    relative_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_local(name: str, arguments: dict[str, Any]) -> None:
        print("Traceback: the tune task failed")
        raise RuntimeError("Task 'tune' finished with status FAILURE")

    monkeypatch.setattr(pipeline_cli, "run_local", run_local)
    fake_versions(monkeypatch, [None, None])
    with pytest.raises(RuntimeError, match="FAILURE") as raised:
        launch.launch_training(launch.training_config())
    (note,) = raised.value.__notes__
    log = Path(note.removeprefix("the tasks' output is in "))
    assert "the tune task failed" in log.read_text()
