"""The wheel works anywhere: built by uv, installed into a fresh venv, run outside the checkout.

The wheel is built from the repository (``uv build``: the sdist, then the wheel from the sdist)
and installed with every extra into a new venv in a temporary directory. Every command runs
from another temporary directory with an environment free of the checkout (no ``PYTHONPATH``,
no ``FRAUDRISK_*`` but the test's own): ``fraudrisk --help``, ``pipeline compile``, the
retraining trigger's kfp.local launch of the training pipeline, ``serve --manifest`` on the
bundled local manifest, ``kafka up`` / ``kafka down``, ``policy lint`` of the bundled default
policy. What the wheel carries as package data — the pipelines and components, their
configurations, the Maven poms, the KServe CRDs, the local manifest, the policies — is found
through ``importlib.resources`` in the installed package, so a lookup relative to the
repository fails here.

The first two tests are fast checks of what the wheel is built from: the package list of
pyproject and the bundled copy of ``manifests/local/inferenceservice.yaml``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fraudrisk.io.database import HEAD
from fraudrisk.io.jars import JARS_DIR_ENV
from fraudrisk.io.kafka_broker import free_port

ROOT = Path(__file__).resolve().parents[2]
LOCAL_MANIFEST = ROOT / "manifests" / "local" / "inferenceservice.yaml"
BUNDLED_MANIFEST = ROOT / "src" / "fraudrisk" / "release" / "local-manifest" / LOCAL_MANIFEST.name
#: Top-level folders of the repository the wheel maps into the package, as pyproject says.
MAPPED = {
    "fraudrisk.pipelines": ROOT / "pipelines",
    "fraudrisk.components": ROOT / "components",
    "fraudrisk.policies": ROOT / "policies",
}
#: Data-only packages (no ``__init__.py``) listed so setuptools ships them without a warning.
DATA_PACKAGES = {"fraudrisk.pipelines.configs"}
UV = Path(sys.executable).parent / "uv"


def _packages_under(name: str, root: Path) -> set[str]:
    return {
        ".".join([name, *init.parent.relative_to(root).parts])
        for init in root.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def test_pyproject_lists_every_package_of_the_wheel() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    expected = _packages_under("fraudrisk", ROOT / "src" / "fraudrisk") | DATA_PACKAGES
    for name, folder in MAPPED.items():
        expected |= _packages_under(name, folder)
        assert setuptools["package-dir"][name] == folder.name
    assert set(setuptools["packages"]) == expected, (
        "[tool.setuptools] packages of pyproject.toml must list every package under src/fraudrisk"
    )


def test_bundled_local_manifest_is_the_committed_one() -> None:
    assert BUNDLED_MANIFEST.read_bytes() == LOCAL_MANIFEST.read_bytes(), (
        "the wheel's copy of manifests/local/inferenceservice.yaml is stale: "
        "cp manifests/local/inferenceservice.yaml src/fraudrisk/release/local-manifest/"
    )


# ------------------------------------------------------------------ the installed wheel


@dataclass(frozen=True)
class Installed:
    """A fresh venv holding the wheel, and a working directory outside the repository."""

    venv: Path
    workdir: Path
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def fraudrisk(self) -> Path:
        return self.venv / "bin" / "fraudrisk"

    def run(self, *argv: str | Path, timeout: float = 300, **env: str) -> Completed:
        done = subprocess.run(
            [str(a) for a in argv],
            cwd=self.workdir,
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Completed(done.returncode, done.stdout, done.stderr)

    def cli(self, *args: str | Path, timeout: float = 300, **env: str) -> Completed:
        return self.run(self.fraudrisk, *args, timeout=timeout, **env)

    def script(self, source: str, *args: str | Path, timeout: float = 300) -> Completed:
        return self.run(self.python, "-c", source, *args, timeout=timeout)


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str

    def ok(self) -> str:
        assert self.returncode == 0, f"exit {self.returncode}\n{self.stdout}\n{self.stderr}"
        return self.stdout


def _run(*argv: str | Path, timeout: float = 600) -> None:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """``uv build`` the repository, install the wheel ``[all]`` into a new venv elsewhere."""
    dist = tmp_path_factory.mktemp("dist")
    _run(UV, "build", "--quiet", "--out-dir", dist, ROOT)
    (wheel,) = dist.glob("fraudrisk-*.whl")
    venv = tmp_path_factory.mktemp("venv") / "venv"
    _run(UV, "venv", "--quiet", "--python", sys.executable, venv)
    _run(UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python", f"{wheel}[all]")
    workdir = tmp_path_factory.mktemp("work")
    dropped = ("FRAUDRISK_", "PYTHON", "VIRTUAL_ENV", "KFP_", "MLFLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env |= {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "PYTHONUNBUFFERED": "1",  # byte-code is written: the venv's modules compile once
        "FRAUDRISK_HOME": str(workdir / "home"),
        "COLUMNS": "200",
    }
    return Installed(venv, workdir, env)


@pytest.mark.slow
@pytest.mark.integration
def test_the_package_and_its_resources_come_from_the_venv(installed: Installed) -> None:
    out = installed.script(
        "import fraudrisk, fraudrisk.components, fraudrisk.pipelines.training as p\n"
        "from fraudrisk.io import jars\n"
        "from fraudrisk.release import canary, crd\n"
        "from fraudrisk.training.pipelines import load_config\n"
        "print(fraudrisk.__file__, fraudrisk.components.__file__, p.__file__,\n"
        "      jars.pom_path('kafka'), jars.pom_path('spark-kafka'), crd.default_crd_dir(),\n"
        "      canary.COMMITTED_MANIFEST, sep='\\n')\n"
        "print(load_config('training', None).n_trials, load_config('monitoring', None).source)\n"
    ).ok()
    *paths, configs = out.splitlines()
    site = installed.venv.resolve()
    for path in map(Path, paths):
        assert path.resolve().is_relative_to(site), path
        assert path.exists(), path
    assert configs == "20 lake"  # pipelines/configs/{training,monitoring}.yaml, package data


@pytest.mark.slow
@pytest.mark.integration
def test_help_lists_the_command_groups(installed: Installed) -> None:
    out = installed.cli("--help").ok()
    assert all(name in out for name in ("pipeline", "serve", "kafka", "canary"))


@pytest.mark.slow
@pytest.mark.integration
def test_database_migrations_and_routing_rules_ship_in_the_wheel(installed: Installed) -> None:
    home = {"FRAUDRISK_HOME": str(installed.workdir / "cases-home")}
    assert "→" in installed.cli("db", "upgrade", **home).ok()
    assert f"code needs {HEAD} (up to date)" in installed.cli("db", "current", **home).ok()
    assert "0 alerts → 0 new cases" in installed.cli("cases", "ingest", **home).ok()  # routing.yaml
    assert "analyst" in installed.cli("users", "permissions", "--markdown", **home).ok()


@pytest.mark.slow
@pytest.mark.integration
def test_the_bundled_default_policy_lints_clean_from_the_wheel(installed: Installed) -> None:
    assert "policy 'default'" in installed.cli("policy", "lint").ok()  # policies/default.yaml
    where = installed.script(
        "from fraudrisk.policy.loader import default_policy_path\nprint(default_policy_path())"
    )
    path = Path(where.ok().strip())
    assert path.resolve().is_relative_to(installed.venv.resolve()) and path.exists(), path


@pytest.mark.slow
@pytest.mark.integration
def test_pipeline_compile_training_writes_the_kfp_ir(installed: Installed) -> None:
    assert "wrote" in installed.cli("pipeline", "compile", "training").ok()
    spec = yaml.safe_load((installed.workdir / "training.yaml").read_text())
    assert spec["pipelineInfo"]["name"] == "training"
    stages = ("build-dataset", "tune", "train", "calibrate", "evaluate", "validate", "register")
    assert {f"comp-{stage}" for stage in stages} <= set(spec["components"])


TRIGGER = """
import json, sys
from pathlib import Path
from fraudrisk.config import get_settings
from fraudrisk.monitoring.ledger import TriggerLedger
from fraudrisk.monitoring.results import DriftResult
from fraudrisk.monitoring.trigger import RetrainingTrigger, TriggerOptions
from fraudrisk.registry import versions as registry

settings = get_settings()
ledger = TriggerLedger(settings.db_url)
options = TriggerOptions(168, training_config=Path(sys.argv[1]), host=None)
trigger = RetrainingTrigger(settings, ledger, options)
launches, launch = [], trigger.launcher  # the real launcher: launch_training on kfp.local
trigger.launcher = lambda config: launches.append(launch(config)) or launches[-1]
result = DriftResult.model_validate_json(Path(sys.argv[2]).read_text())
decision = trigger.decide(result, result.report)
print(json.dumps({
    "outcome": decision.outcome, "detail": decision.detail, "run_id": decision.run_id,
    "registered": decision.registered_version,
    "launches": [launched.model_dump(mode="json") for launched in launches],
    "challenger": registry.get_alias_version(settings, registry.CHALLENGER),
}))
"""


def _drift_result(path: Path) -> Path:
    from fraudrisk.monitoring.results import DriftResult

    result = DriftResult(
        model_uri="models:/fraud-risk@champion",
        model_version="1",
        source="lake",
        start=dt.date(2018, 9, 1),
        end=dt.date(2018, 9, 7),
        rows=10_000,
        sampled_rows=10_000,
        drift_detected=True,
        drift_share=0.5,
        drifted_features=["amount_mean_1d"],
        report="/reports/drift.html",
        report_json="/reports/drift.json",
    )
    path.write_text(result.model_dump_json())
    return path


@pytest.mark.slow
@pytest.mark.integration
def test_trigger_launches_training_on_kfp_local_and_serve_runs_the_bundled_manifest(
    installed: Installed, tmp_path: Path
) -> None:
    from tests.support.data import PERMISSIVE, build_lake

    table_uri, lake_uri = build_lake(tmp_path, customers=100)
    config = tmp_path / "training.yaml"
    run = {"table_uri": table_uri, "lake_uri": lake_uri, "n_trials": 1, "window_days": 14}
    config.write_text(yaml.safe_dump(run | {"timeout_s": 0.0, "gate": PERMISSIVE.model_dump()}))
    out = installed.script(TRIGGER, config, _drift_result(tmp_path / "drift.json"), timeout=1200)
    fired = json.loads(out.ok().splitlines()[-1])
    assert fired["outcome"] == "fired", fired["detail"]
    (launched,) = fired["launches"]
    assert launched["where"] == "local" and launched["state"] == "SUCCEEDED"
    assert launched["version"] == fired["registered"] == fired["challenger"] == "1"
    assert fired["run_id"].startswith("local:")
    home = installed.workdir / "home"
    assert Path(launched["outputs"]) == home / "kfp" / "local_outputs"
    assert Path(launched["outputs"]).is_dir()
    assert "register" in Path(launched["task_log"]).read_text()

    # The scorer's state: the online store over the same feature table, version 1 champion
    # (the trigger's model is challenger; the local manifest serves champion).
    installed.cli("features", "apply", "--table", table_uri).ok()
    installed.cli("features", "materialize", "--start", "2000-01-01T00:00:00").ok()
    installed.script(
        "from fraudrisk.config import get_settings\n"
        "from fraudrisk.registry.versions import promote\n"
        "promote(get_settings(), '1')\n"
    ).ok()
    _serve_answers_ready(installed)


def _serve_answers_ready(installed: Installed) -> None:
    manifest = Path(
        installed.script(
            "from fraudrisk.release import canary, crd\n"
            "text = canary.COMMITTED_MANIFEST.read_text()\n"
            "assert crd.validate_text(text) == [], crd.validate_text(text)\n"
            "print(canary.COMMITTED_MANIFEST)\n"
        )
        .ok()
        .strip()
    )
    assert manifest.resolve().is_relative_to(installed.venv.resolve())
    port = free_port()
    log = installed.workdir / "serve.log"
    with log.open("w") as output:
        argv = ["serve", "--manifest", manifest, "--http-port", str(port), "--workers", "1"]
        server = subprocess.Popen(
            [installed.fraudrisk, *argv, "--no-watch"],
            cwd=installed.workdir,
            env=installed.env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = _wait_ready(f"http://127.0.0.1:{port}", server, timeout=180)
        assert ready.get("ready") is True, ready
        model = _get(f"http://127.0.0.1:{port}/v2/models/fraud-risk/ready")
        assert model is not None and model[0] == 200, model
    finally:
        _stop(server)
    assert "serving fraud-risk" in log.read_text(), log.read_text()


def _get(url: str) -> tuple[int, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError:
        return None


def _wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: tuple[int, Any] | None = None
    while time.monotonic() < deadline:
        assert server.poll() is None, f"fraudrisk serve exited {server.returncode}"
        last = _get(f"{base}/v2/health/ready")
        if last is not None and last[0] == 200:
            return dict(last[1] or {})
        time.sleep(0.5)
    raise AssertionError(f"{base}/v2/health/ready did not answer 200 in {timeout} s: {last}")


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture()
def kafka_home(installed: Installed, jars_dir: Path) -> Iterator[dict[str, str]]:
    """Broker settings: a free loopback port, a FRAUDRISK_HOME of its own, the shared jars."""
    port = free_port()
    env = {
        "FRAUDRISK_HOME": str(installed.workdir / "kafka-home"),
        "FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        JARS_DIR_ENV: str(jars_dir),
    }
    yield env
    installed.cli("kafka", "down", **env)  # a broker left by a failed assertion


@pytest.mark.slow
@pytest.mark.integration
def test_kafka_up_then_down(installed: Installed, kafka_home: dict[str, str]) -> None:
    bootstrap = kafka_home["FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS"]
    up = installed.cli("kafka", "up", timeout=600, **kafka_home).ok()
    assert f"kafka broker up at {bootstrap}" in up
    assert f"export FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS={bootstrap}" in up
    status = installed.cli("kafka", "status", **kafka_home).ok()
    assert "running" in status and "transactions.dlq" in status
    down = installed.cli("kafka", "down", **kafka_home).ok()
    assert f"kafka broker at {bootstrap} stopped" in down
    stopped = installed.cli("kafka", "status", **kafka_home)
    assert stopped.returncode == 1 and "not running" in stopped.stdout
