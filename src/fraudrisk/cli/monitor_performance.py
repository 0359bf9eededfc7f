"""``fraudrisk monitor performance``: labelled performance per day and variant, and its drop.

The ``monitor`` group (:mod:`fraudrisk.cli.monitor`) adds this module's :data:`app`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from fraudrisk.config import get_settings
from fraudrisk.console import console, err_console, examples
from fraudrisk.monitoring.results import PerformanceResult

app = typer.Typer()
EPILOG = examples(
    "fraudrisk monitor performance --model models:/fraud-risk@champion "
    "--start 2018-10-01 --end 2018-10-28 --as-of 2018-10-28",
    "fraudrisk monitor performance --model models:/fraud-risk/3 --source lake "
    "--start 2018-09-01 --end 2018-09-30 --as-of 2018-10-07 --json",
    "fraudrisk monitor performance --model models:/fraud-risk@champion --labels kafka "
    "--start 2018-10-01 --end 2018-10-21",
)


class ScoreSource(StrEnum):
    """Where the scores come from."""

    scores = "scores"
    lake = "lake"


class LabelSource(StrEnum):
    """Where the labels come from."""

    lake = "lake"
    kafka = "kafka"


Day = Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="A day, YYYY-MM-DD.")]


@app.command("performance", epilog=EPILOG)
def performance(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="models:/NAME@ALIAS, models:/NAME/VERSION or a model directory URI: whose "
            "AP is checked against its test-fold AP (and, with --source lake, what scores).",
        ),
    ],
    start: Day,
    end: Day,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Day of the check [today, UTC]."),
    ] = None,
    source: Annotated[
        ScoreSource,
        typer.Option(
            help="scores: what the variants scored (alert store); lake: the feature "
            "table scored with --model now."
        ),
    ] = ScoreSource.scores,
    labels: Annotated[
        LabelSource, typer.Option(help="lake: tx_fraud after the delay; kafka: the labels topic.")
    ] = LabelSource.lake,
    table: Annotated[
        str | None, typer.Option(help="Feature table URI for --source lake [HOME/features].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """AP, CP@budget and recall at the alert budget per day and variant, over labelled days.

    Only days at least settings.monitoring.label_delay_days before --as-of are labelled, so
    --end is clipped to that day. The model's AP over the window is compared with its own
    test-fold AP from MLflow; a relative drop above settings.monitoring.max_performance_drop
    is reported as a retraining trigger (exit code 0 either way).
    """
    from fraudrisk.monitoring.performance import labelled_performance  # heavy: pandas, sklearn

    settings = get_settings()
    today = dt.datetime.now(dt.UTC).date()
    try:
        result = labelled_performance(
            settings,
            model,
            start.date(),
            end.date(),
            as_of.date() if as_of else today,
            source=source.value,
            labels=labels.value,
            table_uri=table,
        )
    except (ValueError, RuntimeError, TimeoutError) as error:  # bad input, model, broker
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    print_performance(result, settings.monitoring.alert_budget, end.date())


def print_performance(result: PerformanceResult, budget: int, asked_end: dt.date) -> None:
    """A table per day and variant, then the window's AP against the model's own."""
    if result.end < asked_end:
        console.print(f"labels known through {result.end} (window clipped from {asked_end})")
    if not result.days:
        console.print(f"[yellow]no labelled scored transaction in {result.start}..{result.end}")
    else:
        table = Table(title=f"Labelled performance of {result.model_uri}")
        for column in (
            "day",
            "variant",
            "version",
            "tx",
            "frauds",
            "AP",
            f"CP@{budget}",
            f"recall@{budget}",
        ):
            left = column in ("day", "variant")
            table.add_column(column, justify="left" if left else "right", no_wrap=True)
        for day in result.days:
            table.add_row(
                str(day.day),
                day.variant,
                day.model_version,
                f"{day.transactions:,}",
                f"{day.frauds:,}",
                _number(day.average_precision),
                _number(day.card_precision_at_k),
                _number(day.recall_at_budget),
            )
        console.print(table)
    if result.calibration_error is not None:
        flag = " [bold red]calibration alarm" if result.calibration_drift_detected else ""
        console.print(
            f"calibration: ECE {result.calibration_error:.4f} over {len(result.reliability)} "
            f"quantile bins ({_percent(result.relative_calibration_error)} of the fraud rate)"
            + flag
        )
    if result.labels:
        sources = ", ".join(f"{count:,} from {name}" for name, count in result.labels.items())
        console.print(f"labels: {sources}")
    console.print(
        f"version {result.model_version}: AP over the window {_number(result.average_precision)}"
        f", test folds {_number(result.expected_average_precision)}, drop {_percent(result.drop)}"
    )
    if result.drop_detected:
        console.print("[bold red]performance drop beyond tolerance: retraining trigger")
    else:
        console.print("[green]no performance drop beyond tolerance")


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}"
