"""``fraudrisk features``: the Spark batch job and the Feast feature store.

``build`` runs the Spark job; ``apply``, ``materialize`` and ``lookup`` work the Feast repo.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from fraudrisk.config import get_settings
from fraudrisk.console import console, err_console, examples
from fraudrisk.features.spark import get_spark, parse_conf

_ARRAY_PREVIEW = 4

app = typer.Typer(
    name="features",
    help="Feature engineering: the Spark batch job and the Feast feature store.",
    no_args_is_help=True,
)


def default_table_uri() -> str:
    """The feature table under FRAUDRISK_HOME."""
    return get_settings().feature_table_uri


@app.command(
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
    from fraudrisk.features.batch import build_features  # heavy: pyarrow, numpy
    from fraudrisk.features.quality import FeatureQualityError

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


@app.command(
    "apply",
    epilog=examples(
        "fraudrisk features apply",
        "fraudrisk features apply --table data/features",
        "FRAUDRISK_FEAST__ONLINE_STORE=redis "
        "FRAUDRISK_FEAST__REDIS_CONNECTION_STRING=cache:6379 fraudrisk features apply",
    ),
)
def apply(
    table: Annotated[
        str | None, typer.Option(help="Feature table directory; default: FRAUDRISK_HOME/features.")
    ] = None,
) -> None:
    """Register the Feast repo (entities, sources, views, services) over the feature table.

    Writes feature_store.yaml, registry.db and the online tables into the Feast repo directory
    (FRAUDRISK_FEAST__REPO_PATH, default FRAUDRISK_HOME/feast), so the feast CLI works there.
    """
    from fraudrisk.features import feast_store  # heavy: pyarrow, numpy

    settings = get_settings()
    began = time.perf_counter()
    names = feast_store.apply(settings, table or settings.feature_table_uri)
    console.print(
        f"applied {len(names)} objects to {settings.feast_repo_path} "
        f"({settings.feast.online_store} online store) in {time.perf_counter() - began:.1f} s:"
    )
    console.print(", ".join(names))


@app.command(
    "materialize",
    epilog=examples(
        "fraudrisk features materialize",
        "fraudrisk features materialize --start 2018-04-01 --end 2018-10-01",
    ),
)
def materialize(
    start: Annotated[
        str | None, typer.Option(help="First event time, ISO (UTC); default: incremental.")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last event time, ISO (UTC); default: now.")
    ] = None,
) -> None:
    """Load the latest feature values and the batch entity state into the online store.

    Without --start, loads what is new since the last run (the first run reaches back the
    views' ttl, 10 years). Give --start to reload history, e.g. after a rebuilt feature table.
    """
    from fraudrisk.features import feast_store  # heavy: pyarrow, numpy

    began = time.perf_counter()
    feast_store.materialize(get_settings(), _parse_time(start), _parse_time(end))
    console.print(f"materialized in {time.perf_counter() - began:.1f} s")


@app.command(
    "lookup",
    epilog=examples(
        "fraudrisk features lookup --customer 42",
        "fraudrisk features lookup --customer 42 --customer 43 --terminal 7",
    ),
)
def lookup(
    customer: Annotated[list[int] | None, typer.Option(help="Customer id (repeatable).")] = None,
    terminal: Annotated[list[int] | None, typer.Option(help="Terminal id (repeatable).")] = None,
) -> None:
    """Print the online values (latest features and entity state) of customers/terminals."""
    from fraudrisk.features import feast_store  # heavy: pyarrow, numpy

    if not customer and not terminal:
        raise typer.BadParameter("give at least one --customer or --terminal")
    found = feast_store.online_features(get_settings(), customer, terminal)
    for entity, rows in found.items():
        console.print(_table(entity, rows))


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date/time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _table(entity: str, rows: list[dict[str, Any]]) -> Table:
    key = f"{entity}_id"
    table = Table(title=f"online {entity} values")
    table.add_column("feature", no_wrap=True)
    for row in rows:
        table.add_column(f"{key} {row[key]}", justify="right")
    for name in (n for n in rows[0] if n != key):
        table.add_row(name, *(_show(row[name]) for row in rows))
    return table


def _show(value: Any) -> str:
    if value is None:
        return "[dim]—[/dim]"
    if isinstance(value, list):
        head = ", ".join(str(v) for v in value[-_ARRAY_PREVIEW:])
        return f"{len(value)}: [{'…, ' if len(value) > _ARRAY_PREVIEW else ''}{head}]"
    if isinstance(value, float):
        return f"{value:,.4f}"
    return str(value)
