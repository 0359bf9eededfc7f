"""``fraudrisk pipeline``: compile the Kubeflow pipelines, run them locally or on a KFP host.

The pipelines (``pipelines/``) and their components (``components/``) are top-level packages
of the repository, beside ``src/``: :func:`load_pipeline_module` puts the repository root on
``sys.path`` once and imports ``pipelines.<name>``, so the pipeline modules themselves stay
plain wiring with ordinary ``from components.x import x`` imports.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer

from fraudrisk.console import console, examples

#: The repository root (``src/fraudrisk/pipeline_cli.py`` → ``.``); editable installs only.
REPO_ROOT = Path(__file__).resolve().parents[2]
PIPELINES = ("training", "monitoring")


def load_pipeline_module(name: str, root: Path = REPO_ROOT) -> ModuleType:
    """Import ``pipelines.<name>`` from the repository at ``root``.

    Raises:
        typer.BadParameter: If ``name`` is not a known pipeline.
    """
    if name not in PIPELINES:
        raise typer.BadParameter(f"unknown pipeline {name!r}; known: {', '.join(PIPELINES)}")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"pipelines.{name}")


def load_config(name: str, path: Path | None) -> Any:
    """The validated run configuration (default ``pipelines/configs/<name>.yaml``)."""
    load_pipeline_module(name)
    from pipelines.config import CONFIGS, TrainingPipelineConfig
    from pipelines.monitoring_config import MonitoringPipelineConfig

    model = MonitoringPipelineConfig if name == "monitoring" else TrainingPipelineConfig
    return model.from_yaml(path or CONFIGS / f"{name}.yaml")


def run_local(name: str, arguments: dict[str, Any]) -> Any:
    """Run the pipeline with ``kfp.local`` (subprocess runner, the current interpreter)."""
    from kfp import local

    module = load_pipeline_module(name)
    local.init(runner=local.SubprocessRunner(use_venv=False))
    return getattr(module, f"{name}_pipeline")(**arguments)


def submit(name: str, arguments: dict[str, Any], host: str) -> str:
    """Submit the pipeline to a KFP host; the run id."""
    import kfp

    module = load_pipeline_module(name)
    result = kfp.Client(host=host).create_run_from_pipeline_func(
        getattr(module, f"{name}_pipeline"), arguments=arguments
    )
    return str(result.run_id)


def register(app: typer.Typer) -> None:
    """Add the ``pipeline`` sub-app (``compile``, ``run``) to ``app``."""
    pipeline_app = typer.Typer(help="Compile and run the Kubeflow pipelines.", no_args_is_help=True)
    app.add_typer(pipeline_app, name="pipeline")

    @pipeline_app.command(
        "compile",
        epilog=examples(
            "fraudrisk pipeline compile training",
            "fraudrisk pipeline compile training --out build/training.yaml",
            "fraudrisk pipeline compile monitoring",
        ),
    )
    def compile_cmd(
        name: Annotated[str, typer.Argument(help="Pipeline name: training or monitoring.")],
        out: Annotated[
            Path | None, typer.Option("--out", help="IR YAML file (default <name>.yaml).")
        ] = None,
    ) -> None:
        """Write the pipeline's KFP IR YAML."""
        written = load_pipeline_module(name).compile_pipeline(out or Path(f"{name}.yaml"))
        console.print(f"wrote {written}")

    @pipeline_app.command(
        "run",
        epilog=examples(
            "fraudrisk pipeline run training",
            "fraudrisk pipeline run training --config my-run.yaml",
            "fraudrisk pipeline run training --host https://kfp.example.com",
            "fraudrisk pipeline run monitoring --config my-monitoring.yaml",
        ),
    )
    def run_cmd(
        name: Annotated[str, typer.Argument(help="Pipeline name: training or monitoring.")],
        config: Annotated[
            Path | None,
            typer.Option("--config", help="Run configuration (default pipelines/configs)."),
        ] = None,
        host: Annotated[
            str | None, typer.Option("--host", help="KFP host; default: run locally.")
        ] = None,
    ) -> None:
        """Run locally with kfp.local (subprocess runner), or submit to a KFP host."""
        arguments = load_config(name, config).arguments()
        if host:
            console.print(f"submitted run {submit(name, arguments, host)} to {host}")
            return
        task = run_local(name, arguments)
        console.print(f"pipeline {name} finished: {task}")
