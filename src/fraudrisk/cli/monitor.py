"""``fraudrisk monitor``: drift, reference and UI here; performance and watch in sub-modules.

The group is composed here, in one place: :mod:`~fraudrisk.cli.monitor_performance`
(``performance``) and :mod:`~fraudrisk.cli.monitor_watch` (``watch``) each define an app
without a name, which ``app.add_typer`` merges into this one.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.table import Table

from fraudrisk.cli import monitor_performance, monitor_watch
from fraudrisk.config import get_settings
from fraudrisk.console import console, err_console, examples
from fraudrisk.errors import MonitoringError
from fraudrisk.monitoring.results import DriftResult, Source

app = typer.Typer(
    name="monitor",
    help="Drift and performance monitoring of the registered models (Evidently).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
# Commands of this module first, then these (add_typer of apps without a name merges them in).
app.add_typer(monitor_performance.app)
app.add_typer(monitor_watch.app)

ModelOption = Annotated[
    str, typer.Option("--model", help="models:/NAME/VERSION or models:/NAME@ALIAS.")
]
DayOption = Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="A day, YYYY-MM-DD.")]
TableOption = Annotated[
    str | None, typer.Option("--table", help="Feature table URI; default HOME/features.")
]


def _fail(error: Exception) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {error}")
    return typer.Exit(2)


@app.command(
    "drift",
    epilog=examples(
        "fraudrisk monitor drift --model models:/fraud-risk@champion --source lake "
        "--start 2018-09-01 --end 2018-09-07",
        "fraudrisk monitor drift --model models:/fraud-risk/3 --source scores "
        "--start 2018-09-30 --end 2018-09-30 --json",
    ),
)
def drift(
    model: ModelOption,
    start: DayOption,
    end: DayOption,
    source: Annotated[
        str, typer.Option(help="lake: feature table, scored now; scores: the alert store.")
    ] = "lake",
    table: TableOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    workspace: Annotated[
        bool, typer.Option(help="Add the report to the Evidently workspace.")
    ] = True,
) -> None:
    """Compare a window of days with the model's reference: input, score and quality drift.

    Writes an HTML report (for people) and a JSON report (for machines) named after the model
    version, the source and the days; exits 0 whether or not drift is found.
    """
    from fraudrisk.monitoring.drift import SOURCES, drift_report, notes_of  # heavy: mlflow, pyspark

    if source not in SOURCES:
        raise _fail(MonitoringError(f"--source must be one of {', '.join(SOURCES)}"))
    chosen: Source = "lake" if source == "lake" else "scores"
    try:
        result = drift_report(
            get_settings(),
            model,
            chosen,
            start.date(),
            end.date(),
            table_uri=table,
            workspace=workspace,
        )
    except MonitoringError as error:
        raise _fail(error) from None
    if as_json:
        typer.echo(json.dumps(result.summary(), indent=2))
        return
    console.print(drift_table(result))
    console.print(weight_table(result))
    for note in notes_of(result):
        err_console.print(f"[yellow]note:[/yellow] {note}")
    typer.echo(f"report: {result.report}\njson:   {result.report_json}")  # unwrapped paths


def drift_table(result: DriftResult) -> Table:
    """The human view of a drift result: both input verdicts, score drift, data quality."""
    settings = get_settings().monitoring
    table = Table(title=f"Drift of {result.model_uri} (version {result.model_version})")
    table.add_column("")
    table.add_column("value")
    table.add_row("window", f"{result.source}: {result.start}..{result.end}")
    table.add_row("rows", f"{result.rows:,} ({result.sampled_rows:,} compared)")
    table.add_row(
        "input drift", f"{_verdict(result.drift_detected)} ({result.drift_verdict} verdict)"
    )
    weighted = result.weighted_drift_share
    table.add_row(
        "  weighted",
        "n/a: the model gives no per-feature contributions"
        if weighted is None
        else f"{_verdict(result.verdicts.get('weighted', False))}: {weighted:.0%} of the "
        f"model's importance drifted (threshold {settings.weighted_drift_share:.0%})",
    )
    table.add_row(
        "  columns",
        f"{_verdict(result.verdicts.get('columns', False))}: {result.drift_share:.0%} of "
        f"features drifted (threshold {settings.drift_share:.0%})",
    )
    table.add_row("drifted features", ", ".join(result.drifted_features) or "none")
    psi = "n/a" if result.score_drift is None else f"{result.score_drift:.3f}"
    flag = " [red]drift[/red]" if result.score_drift_detected else ""
    table.add_row("risk-score PSI", f"{psi} (threshold {settings.score_drift_psi:g}){flag}")
    issues = {k: v for k, v in result.quality_issues.items() if ":" not in k and v}
    table.add_row("data quality", ", ".join(f"{k} {v:,}" for k, v in issues.items()) or "clean")
    return table


def weight_table(result: DriftResult) -> Table:
    """Each feature's share of the model's importance, drift score and verdict, heaviest first."""
    table = Table(title="Features by their weight in the model's decisions (mean |SHAP|)")
    for column in ("feature", "weight", "drift score", "drifted"):
        table.add_column(column, justify="left" if column == "feature" else "right")
    for row in result.weight_table():
        weight, score = row["weight"], row["score"]
        table.add_row(
            str(row["feature"]),
            f"{weight:.1%}" if isinstance(weight, float) else "n/a",
            f"{score:.4g}" if isinstance(score, float) else "n/a",
            "[red]drifted[/red]" if row["drifted"] else "",
        )
    return table


def _verdict(drifted: bool) -> str:
    return "[red]drift[/red]" if drifted else "[green]no drift[/green]"


@app.command(
    "reference",
    epilog=examples(
        "fraudrisk monitor reference --model models:/fraud-risk/2",
        "fraudrisk monitor reference --model models:/fraud-risk/1 --start 2018-05-01 "
        "--end 2018-06-25 --table s3://risk/features",
    ),
)
def reference(
    model: ModelOption,
    table: TableOption = None,
    start: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First training day.")
    ] = None,
    end: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last training day.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace a reference the version has.")] = False,
) -> None:
    """Build the reference of a version registered without one (from its training period).

    The period and table recorded with the version are used unless given.
    """
    from fraudrisk.monitoring.backfill import build_missing_reference  # heavy: mlflow, pyspark
    from fraudrisk.registry.references import REFERENCE_TAG, resolve_version

    settings = get_settings()
    try:
        found = resolve_version(settings, model)
        if dict(found.tags).get(REFERENCE_TAG) and not force:
            raise MonitoringError(f"{model} has a reference already (--force replaces it)")
        built = build_missing_reference(
            settings,
            model,
            table_uri=table,
            start=start.date() if start else None,
            end=end.date() if end else None,
        )
    except MonitoringError as error:
        raise _fail(error) from None
    meta = built.meta
    console.print(
        f"reference of {meta['model_name']} version {meta['version']}: {meta['rows']:,} of "
        f"{meta['source_rows']:,} rows of {meta['period']}"
    )


@app.command(
    "ui",
    epilog=examples("fraudrisk monitor ui", "fraudrisk monitor ui --port 8001 --host 0.0.0.0"),
)
def ui(
    port: Annotated[int, typer.Option(help="Port of the UI.", min=1, max=65535)] = 8001,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Run Evidently's UI over the workspace: each model's report history (Ctrl-C stops)."""
    # heavy: mlflow, pyspark
    from fraudrisk.monitoring.workspace import run_ui, ui_command, workspace_location

    settings = get_settings()
    try:
        command = ui_command(settings, host, port)
    except MonitoringError as error:
        raise _fail(error) from None
    console.print(
        f"Evidently UI on http://{host}:{port} (workspace {workspace_location(settings)})"
    )
    raise typer.Exit(run_ui(command))
