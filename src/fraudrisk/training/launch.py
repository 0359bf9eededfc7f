"""Launch the training pipeline from Python (a notebook, ``make demo``): locally or on KFP.

The pipeline is the one ``fraudrisk pipeline run training`` runs
(:mod:`fraudrisk.training.pipelines`).
Locally it runs under ``kfp.local`` (subprocess runner) inside ``HOME/kfp``: kfp.local writes
its ``local_outputs/`` under the working directory, and the component subprocesses get an
absolute ``FRAUDRISK_HOME`` so a relative home still means the same directory. kfp.local prints
every task's inputs, outputs and logs: they go to a log file under ``HOME/kfp/logs`` and only
the task start/finish lines are echoed (``quiet=False`` prints everything). With a host
(argument, or the ``KFP_HOST`` environment variable) the run is submitted with ``kfp.Client``
and awaited. Either way the version it registered is read back from the MLflow registry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

from pydantic import BaseModel, Field

from fraudrisk.config import Settings, get_settings
from fraudrisk.training import pipelines
from fraudrisk.training.results import latest_version

#: Environment variable naming the Kubeflow Pipelines endpoint; unset = run locally.
KFP_HOST_ENV = "KFP_HOST"
PIPELINE = "training"
#: kfp.local lines echoed by a quiet run: task start and finish, pipeline finish.
_PROGRESS = re.compile(r"INFO - (Executing task|Task .* finished with status|Pipeline .* finished)")


class PipelineConfig(Protocol):
    """A validated run configuration (``pipelines.config.TrainingPipelineConfig``)."""

    def arguments(self) -> dict[str, Any]:
        """The pipeline arguments."""


class LaunchResult(BaseModel):
    """What one launch of the training pipeline did."""

    where: Literal["local", "remote"] = Field(description="kfp.local or a KFP host.")
    host: str | None = Field(None, description="The KFP host of a remote run.")
    run_id: str | None = Field(None, description="KFP run id of a remote run.")
    state: str = Field(description="Final state: SUCCEEDED, FAILED, ...")
    version: str | None = Field(
        description="Version registered by the run; None when the gate rejected the model."
    )
    seconds: float = Field(description="Wall time of the launch, waiting included.")
    outputs: Path | None = Field(None, description="kfp.local outputs directory (local runs).")
    task_log: Path | None = Field(None, description="Full kfp.local output of a quiet run.")


def kfp_host() -> str | None:
    """The KFP host of ``KFP_HOST``, or None (run locally)."""
    return os.environ.get(KFP_HOST_ENV) or None


def training_config(path: Path | None = None, **overrides: Any) -> PipelineConfig:
    """The training run configuration (default ``pipelines/configs/training.yaml``), overridden.

    Args:
        path: A YAML run configuration.
        **overrides: Fields to replace (``n_trials=3``, ``gate={...}``), validated again;
            None keeps the configuration's value.

    Raises:
        pydantic.ValidationError: Naming each invalid field.
    """
    config = pipelines.load_config(PIPELINE, path)
    merged = config.model_dump() | {k: v for k, v in overrides.items() if v is not None}
    validated: PipelineConfig = type(config).model_validate(merged)
    return validated


def launch_training(
    config: PipelineConfig,
    *,
    host: str | None = None,
    settings: Settings | None = None,
    timeout_s: int = 6 * 3600,
    quiet: bool = True,
) -> LaunchResult:
    """Run the training pipeline locally, or on ``host`` and wait for it.

    Args:
        config: The run configuration (:func:`training_config`).
        host: KFP endpoint; None = run locally with kfp.local.
        settings: Platform settings (HOME, MLflow URIs); default :func:`get_settings`.
        timeout_s: Longest wait for a remote run.
        quiet: Local run: write kfp.local's output to ``task_log``, echo progress lines only.

    Returns:
        Where it ran, its state, the version it registered and its wall time.

    Raises:
        RuntimeError: If a local task fails (kfp.local raises it).
    """
    settings = settings or get_settings()
    before = latest_version(settings)
    began = time.perf_counter()
    outputs = log = run_id = None
    if host:
        run_id, state = _run_remote(config.arguments(), host, timeout_s)
    else:
        log = _log_path(settings) if quiet else None
        outputs, state = _run_local(config, settings, log), "SUCCEEDED"
    after = latest_version(settings)
    return LaunchResult(
        where="remote" if host else "local",
        host=host,
        run_id=run_id,
        state=state,
        version=after if after != before else None,
        seconds=time.perf_counter() - began,
        outputs=outputs,
        task_log=log,
    )


def _log_path(settings: Settings) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return settings.kfp_dir.resolve() / "logs" / f"{PIPELINE}-{stamp}.log"


def _run_local(config: PipelineConfig, settings: Settings, log: Path | None) -> Path:
    """Run under kfp.local in ``HOME/kfp``; the ``local_outputs`` directory."""
    home = settings.home.resolve()
    workdir = settings.kfp_dir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    arguments = config.arguments()
    for key in ("table_uri", "lake_uri"):  # before the working directory changes
        arguments[key] = _absolute(arguments[key])
    with (
        _environ("FRAUDRISK_HOME", str(home)),
        contextlib.chdir(workdir),
        _task_output(log),
        warnings.catch_warnings(),
    ):
        # kfp.local warns on each task that our image is not a stock Python one: it is known.
        warnings.filterwarnings("ignore", "You may be attemping", RuntimeWarning)
        pipelines.run_local(PIPELINE, arguments)
    return workdir / "local_outputs"


@contextlib.contextmanager
def _task_output(log: Path | None) -> Iterator[None]:
    """Send stdout (where kfp.local prints and logs) to ``log``, echoing progress lines."""
    if log is None:
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log.open("w") as file, contextlib.redirect_stdout(ProgressFilter(file, sys.stdout)):
            yield
    except Exception as error:
        error.add_note(f"the tasks' output is in {log}")
        raise


class ProgressFilter(io.TextIOBase):
    """A text stream writing everything to ``file`` and the progress lines to ``echo``."""

    def __init__(self, file: TextIO, echo: TextIO) -> None:
        self._file, self._echo, self._pending = file, echo, ""

    def write(self, text: str) -> int:
        """Write ``text`` to the file; echo each completed line that reports progress."""
        self._file.write(text)
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            if _PROGRESS.search(line):
                self._echo.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        """Flush both streams."""
        self._file.flush()
        self._echo.flush()


def _absolute(uri: str) -> str:
    """A local path made absolute; a URI with a scheme (``s3://``) unchanged."""
    return uri if "://" in uri else str(Path(uri).resolve())


def _run_remote(arguments: dict[str, Any], host: str, timeout_s: int) -> tuple[str, str]:
    """Submit to ``host`` and wait; the run id and its final state."""
    import kfp  # deferred: kfp (≈0.3 s) only for a remote run

    run_id = pipelines.submit(PIPELINE, arguments, host)
    run = kfp.Client(host=host).wait_for_run_completion(run_id, timeout=timeout_s)
    return run_id, str(getattr(run, "state", "UNKNOWN"))


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the block (child processes inherit it)."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved
