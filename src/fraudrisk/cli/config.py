"""``fraudrisk config``: inspect the effective settings."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from fraudrisk.config import get_settings
from fraudrisk.console import console, examples

app = typer.Typer(name="config", help="Inspect the effective settings.", no_args_is_help=True)


@app.command(
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
