"""CLI of the feature stage: ``fraudrisk features build | apply | materialize | lookup``."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from fraudrisk.config import get_settings
from fraudrisk.console import console, err_console, examples

features_app = typer.Typer(
    help="Feature engineering: the Spark batch job and the Feast feature store.",
    no_args_is_help=True,
)


def default_table_uri() -> str:
    """The feature table under FRAUDRISK_HOME."""
    return str(get_settings().home / "features")


@features_app.command(
    "build",
    epilog=examples(
        "fraudrisk features build --lake data/lake --out data/features",
        "fraudrisk features build --master spark://spark-master:7077 --lake s3://risk/lake "
        "--out s3://risk/features",
        "fraudrisk features build --conf spark.driver.memory=12g",
    ),
)
def build(
    lake: Annotated[str | None, typer.Option(help="Lake URI; default: settings.")] = None,
    out: Annotated[
        str | None, typer.Option(help="Feature table URI; default: HOME/features.")
    ] = None,
    master: Annotated[
        str, typer.Option(help="Spark master URL (local[*], spark://, k8s://).")
    ] = "local[*]",
    conf: Annotated[list[str] | None, typer.Option(help="Extra Spark setting key=value.")] = None,
) -> None:
    """Compute every feature for every lake transaction with Spark.

    Writes the feature table (day partitions, one row per transaction, each day atomic), the
    per-entity state for the online store and a manifest; checks the table's quality (nulls,
    ranges, one row per transaction, row count equal to the lake's) and fails loudly.
    """
    from fraudrisk.features.batch import build_features
    from fraudrisk.features.quality import FeatureQualityError
    from fraudrisk.features.spark import get_spark, parse_conf

    settings = get_settings()
    lake_uri, out_uri = lake or settings.lake_uri, out or default_table_uri()
    began = time.perf_counter()
    with console.status(f"starting Spark ({master})"):
        spark = get_spark(master, "fraudrisk-features", parse_conf(conf))
    try:
        with console.status(f"building features from {lake_uri}"):
            result = build_features(spark, lake_uri, out_uri, settings.lake)
    except FeatureQualityError as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    except ValueError as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    elapsed = time.perf_counter() - began
    table = Table(title="Feature build", show_header=False)
    for key, value in [
        ("transactions", f"{result.rows:,}"),
        ("days", result.days),
        ("Spark tasks (time chunks)", result.chunks),
        ("customers with state", f"{result.customers:,}"),
        ("terminals with state", f"{result.terminals:,}"),
        ("state as of", result.as_of),
        ("feature set", result.feature_set_version),
        ("seconds (Spark start-up included)", f"{elapsed:.1f}"),
        ("rows/s", f"{result.rows / elapsed:,.0f}"),
        ("table", out_uri),
    ]:
        table.add_row(key, str(value))
    console.print(table)


def _register_feast() -> None:
    from fraudrisk.features.feast_cli import register

    register(features_app)


_register_feast()
