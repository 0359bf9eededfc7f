"""``fraudrisk pipeline``: compile the Kubeflow pipelines, run them locally or on a KFP host.

Loading, configuring and running the pipelines is :mod:`fraudrisk.training.pipelines`; kfp
itself loads only when a pipeline is compiled or run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudrisk.console import console, examples
from fraudrisk.training.pipelines import load_config, load_pipeline_module, run_local, submit

app = typer.Typer(
    name="pipeline", help="Compile and run the Kubeflow pipelines.", no_args_is_help=True
)


@app.command(
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


@app.command(
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
