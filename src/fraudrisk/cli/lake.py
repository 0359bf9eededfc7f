"""``fraudrisk lake``: inspect the transaction lake."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fraudrisk.config import get_settings
from fraudrisk.console import console, examples

if TYPE_CHECKING:  # the heavy modules load when a command runs, not when the CLI starts
    from fraudrisk.io.lake import Lake

app = typer.Typer(name="lake", help="Inspect the transaction lake.", no_args_is_help=True)


def open_lake(uri: str | None) -> Lake:
    """The lake at ``uri``, else the lake setting's."""
    from fraudrisk.io.lake import Lake  # heavy: pyarrow, numpy

    settings = get_settings()
    return Lake.open(uri or settings.lake_uri, settings.lake)


@app.command(
    "check",
    epilog=examples("fraudrisk lake check --lake data/lake --plot daily.png"),
)
def check(
    lake_uri: Annotated[
        str | None, typer.Option("--lake", help="Lake URI; default: settings.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG of daily volume and frauds.")
    ] = None,
) -> None:
    """Validate every partition of the lake and print a summary (exit 1 if a check fails)."""
    from fraudrisk.data.summary import inspect_lake, plot_daily, print_report  # heavy: pandas

    report = inspect_lake(open_lake(lake_uri))
    print_report(report)
    if plot is not None:
        console.print(f"plot: {plot_daily(report, plot)}")
    if not report.ok:
        raise typer.Exit(1)
