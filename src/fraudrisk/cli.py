"""The ``fraudrisk`` command line: one sub-command or sub-app per platform stage."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from fraudrisk.console import console, examples

app = typer.Typer(
    name="fraudrisk",
    help="fraudrisk — real-time card-transaction fraud risk platform.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    epilog=examples(
        "fraudrisk demo",
        "fraudrisk simulate --preset handbook --out data/lake",
        "fraudrisk ingest transactions.csv --lake data/lake",
        "fraudrisk config show",
    ),
)
config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command(
    "show",
    epilog=examples(
        "fraudrisk config show",
        "FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS=b-1:9092 fraudrisk config show --json",
    ),
)
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the effective settings (FRAUDRISK_* variables over defaults), secrets masked."""
    from fraudrisk.config import get_settings

    data = get_settings().masked()
    if as_json:
        console.print_json(json.dumps(data, default=str))
        return
    table = Table(title="fraudrisk settings", show_lines=False)
    table.add_column("setting")
    table.add_column("value")
    for key, value in _flatten(data):
        table.add_row(key, str(value))
    console.print(table)


def _flatten(data: dict[str, object], prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flatten(value, f"{name}.")
        else:
            rows.append((name, value))
    return rows


@app.command(epilog=examples("make demo", "FRAUDRISK_HOME=/tmp/fr fraudrisk demo"))
def demo() -> None:
    """Run the main job end to end on embedded defaults (under FRAUDRISK_HOME).

    Today: simulate the handbook dataset into the lake, validate it, print a summary and
    write a PNG of daily transactions and frauds.
    """
    from fraudrisk.demo import run_demo

    raise typer.Exit(run_demo())


def _register_stages() -> None:
    from fraudrisk.api.cli import api_app
    from fraudrisk.data.cli import register as register_data
    from fraudrisk.data.ingest_cli import register as register_ingest
    from fraudrisk.features.cli import features_app
    from fraudrisk.inference.cli import register as register_serving
    from fraudrisk.io.kafka_cli import kafka_app
    from fraudrisk.monitoring.cli import monitor_app
    from fraudrisk.pipeline_cli import register as register_pipeline
    from fraudrisk.streaming.cli import stream_app
    from fraudrisk.streaming.sources_cli import register as register_sources
    from fraudrisk.training.cli import register as register_training

    register_data(app)
    register_ingest(app)
    app.add_typer(features_app, name="features")
    app.add_typer(kafka_app, name="kafka")
    app.add_typer(stream_app, name="stream")
    register_training(app)
    register_pipeline(app)
    register_serving(app)
    app.add_typer(api_app, name="api")
    register_sources(app)
    app.add_typer(monitor_app, name="monitor")


_register_stages()


def main() -> None:
    """Entry point of the ``fraudrisk`` script."""
    app()
