"""The ``fraudrisk demo`` command: the main job end to end on embedded defaults."""

from __future__ import annotations

import typer

from fraudrisk.console import examples

app = typer.Typer()


@app.command(epilog=examples("make demo", "FRAUDRISK_HOME=/tmp/fr fraudrisk demo"))
def demo() -> None:
    """Run the main job end to end on embedded defaults (under FRAUDRISK_HOME).

    Today: simulate the handbook dataset into the lake, validate it, print a summary and
    write a PNG of daily transactions and frauds.
    """
    from fraudrisk.demo.run import run_demo  # heavy: pandas, sqlalchemy, httpx

    raise typer.Exit(run_demo())
