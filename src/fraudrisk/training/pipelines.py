"""The Kubeflow pipelines: load, configure, run them locally or on a KFP host.

The pipelines (``pipelines/``) and their components (``components/``) stay top-level folders of
the repository, packaged as ``fraudrisk.pipelines`` and ``fraudrisk.components`` (pyproject's
``[tool.setuptools.package-dir]``), the same names in the editable checkout and in the wheel;
their run configurations ``pipelines/configs/*.yaml`` are package data. They are adapters above
this layer (they import :mod:`fraudrisk.training`), so they are imported by name here, never
statically. The ``fraudrisk pipeline`` commands are :mod:`fraudrisk.cli.pipeline`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import typer

PIPELINES = ("training", "monitoring")
PACKAGE = "fraudrisk.pipelines"
#: The module of each pipeline's configuration model, and the model's name.
CONFIG_MODELS = {
    "training": ("config", "TrainingPipelineConfig"),
    "monitoring": ("monitoring_config", "MonitoringPipelineConfig"),
}


def load_pipeline_module(name: str) -> ModuleType:
    """Import ``fraudrisk.pipelines.<name>``.

    Raises:
        typer.BadParameter: If ``name`` is not a known pipeline.
    """
    if name not in PIPELINES:
        raise typer.BadParameter(f"unknown pipeline {name!r}; known: {', '.join(PIPELINES)}")
    return importlib.import_module(f"{PACKAGE}.{name}")


def load_config(name: str, path: Path | None) -> Any:
    """The validated run configuration (default ``pipelines/configs/<name>.yaml``)."""
    load_pipeline_module(name)
    module, model = CONFIG_MODELS[name]
    config = importlib.import_module(f"{PACKAGE}.{module}")
    return getattr(config, model).from_yaml(path or config.CONFIGS / f"{name}.yaml")


def run_local(name: str, arguments: dict[str, Any]) -> Any:
    """Run the pipeline with ``kfp.local`` (subprocess runner, the current interpreter)."""
    from kfp import local  # deferred: kfp (≈0.3 s); the CLI imports this module

    module = load_pipeline_module(name)
    local.init(runner=local.SubprocessRunner(use_venv=False))
    return getattr(module, f"{name}_pipeline")(**arguments)


def submit(name: str, arguments: dict[str, Any], host: str) -> str:
    """Submit the pipeline to a KFP host; the run id."""
    import kfp  # deferred: kfp (≈0.3 s); the CLI imports this module

    module = load_pipeline_module(name)
    result = kfp.Client(host=host).create_run_from_pipeline_func(
        getattr(module, f"{name}_pipeline"), arguments=arguments
    )
    return str(result.run_id)
