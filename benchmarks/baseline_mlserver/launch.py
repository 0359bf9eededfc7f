"""The stock baseline, set up and started: MLServer (own venv) behind the feature-lookup hop.

* :func:`ensure_venv` — MLServer pins packages that conflict with kserve and feast, so it gets
  its own venv (``python3 -m venv`` + ``pip install`` of :data:`MLSERVER_PINS` from PyPI),
  created once and reused while its pins marker matches.
* :func:`prepare_repository` — exports the champion's booster (``export.py`` in the project's
  venv) and writes MLServer's ``settings.json``: REST on the given loopback port, gRPC on
  another free port (MLServer always starts it), Prometheus metrics server off, inference in
  the server process (``parallel_workers`` 0: no extra inter-process hop on 2 cores),
  ``debug`` off (no per-request logging).
* :func:`baseline_commands` — the two command lines: ``mlserver start REPO`` (with
  ``OMP_NUM_THREADS=1``, as our scorer's booster: one thread per single-row prediction) and
  the hop (``hop.py``, FastAPI + uvicorn in the project's venv).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fraudrisk.vocab import MODEL_NAME

#: Versions that install together on Python 3.11 (same xgboost 3.2 as the project's venv).
MLSERVER_PINS = ("mlserver==1.7.1", "mlserver-xgboost==1.7.1")
PINS_MARKER = ".fraudrisk-pins"
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BaselinePorts:
    """Loopback ports of the baseline: the hop (what the load hits), MLServer REST and gRPC."""

    hop: int
    mlserver: int
    grpc: int


def ensure_venv(venv: Path, python: str = "python3") -> Path:
    """The MLServer venv at ``venv``, created and installed when missing or outdated.

    Args:
        venv: The venv directory (cached across runs).
        python: The interpreter that creates it.

    Returns:
        The venv's ``mlserver`` executable.

    Raises:
        RuntimeError: If the venv cannot be created or the install fails (pip's tail says why).
    """
    marker, mlserver = venv / PINS_MARKER, venv / "bin" / "mlserver"
    wanted = "\n".join(MLSERVER_PINS)
    if mlserver.exists() and marker.exists() and marker.read_text() == wanted:
        return mlserver
    steps = [
        [python, "-m", "venv", "--clear", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *MLSERVER_PINS],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise RuntimeError(f"{' '.join(step)} failed:\n{tail}")
    marker.write_text(wanted)
    return mlserver


def prepare_repository(repo: Path, ports: BaselinePorts, model_uri: str, home: Path) -> Path:
    """Export the booster into the MLServer repository ``repo`` and write its settings.

    Returns:
        The ``feature_names.json`` the hop reads.

    Raises:
        RuntimeError: If the export fails.
    """
    repo.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(HERE / "export.py"), "--out", str(repo)]
    env = {**os.environ, "FRAUDRISK_HOME": str(home)}
    done = subprocess.run(
        [*command, "--model-uri", model_uri], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"exporting the booster of {model_uri} failed:\n{tail}")
    settings = {
        "host": "127.0.0.1",
        "http_port": ports.mlserver,
        "grpc_port": ports.grpc,
        "metrics_endpoint": None,
        "parallel_workers": 0,
        "debug": False,
    }
    (repo / "settings.json").write_text(json.dumps(settings, indent=2))
    exported = json.loads(done.stdout.strip().splitlines()[-1])
    return Path(exported["path"]) / "feature_names.json"


def baseline_commands(
    mlserver: Path, repo: Path, ports: BaselinePorts, features: Path
) -> list[tuple[list[str], dict[str, str], str]]:
    """``(argv, extra env, ready URL)`` of MLServer and then of the hop, in start order."""
    hop = [
        sys.executable,
        str(HERE / "hop.py"),
        "--port",
        str(ports.hop),
        "--mlserver",
        f"http://127.0.0.1:{ports.mlserver}",
        "--features",
        str(features),
    ]
    return [
        (
            [str(mlserver), "start", str(repo)],
            {"OMP_NUM_THREADS": "1"},
            f"http://127.0.0.1:{ports.mlserver}/v2/models/fraud-risk-xgb/ready",
        ),
        (hop, {}, f"http://127.0.0.1:{ports.hop}/v2/models/{MODEL_NAME}/ready"),
    ]
