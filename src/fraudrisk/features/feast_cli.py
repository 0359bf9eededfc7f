"""CLI commands of the Feast repo: ``features apply``, ``materialize`` and ``lookup``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from fraudrisk.config import get_settings
from fraudrisk.console import console, examples

_ARRAY_PREVIEW = 4


def apply(
    table: Annotated[
        str | None, typer.Option(help="Feature table directory; default: FRAUDRISK_HOME/features.")
    ] = None,
) -> None:
    """Register the Feast repo (entities, sources, views, services) over the feature table.

    Writes feature_store.yaml, registry.db and the online tables into the Feast repo directory
    (FRAUDRISK_FEAST__REPO_PATH, default FRAUDRISK_HOME/feast), so the feast CLI works there.
    """
    from fraudrisk.features import feast_store

    settings = get_settings()
    began = time.perf_counter()
    names = feast_store.apply(settings, table or str(settings.home / "features"))
    console.print(
        f"applied {len(names)} objects to {settings.feast_repo_path} "
        f"({settings.feast.online_store} online store) in {time.perf_counter() - began:.1f} s:"
    )
    console.print(", ".join(names))


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
    from fraudrisk.features import feast_store

    began = time.perf_counter()
    feast_store.materialize(get_settings(), _parse_time(start), _parse_time(end))
    console.print(f"materialized in {time.perf_counter() - began:.1f} s")


def lookup(
    customer: Annotated[list[int] | None, typer.Option(help="Customer id (repeatable).")] = None,
    terminal: Annotated[list[int] | None, typer.Option(help="Terminal id (repeatable).")] = None,
) -> None:
    """Print the online values (latest features and entity state) of customers/terminals."""
    from fraudrisk.features import feast_store

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


def register(features_app: typer.Typer) -> None:
    """Add the Feast commands to the ``features`` sub-app."""
    features_app.command("apply", epilog=examples(
        "fraudrisk features apply",
        "fraudrisk features apply --table data/features",
        "FRAUDRISK_FEAST__ONLINE_STORE=redis FRAUDRISK_FEAST__REDIS_CONNECTION_STRING=cache:6379 "
        "fraudrisk features apply",
    ))(apply)  # fmt: skip
    features_app.command("materialize", epilog=examples(
        "fraudrisk features materialize",
        "fraudrisk features materialize --start 2018-04-01 --end 2018-10-01",
    ))(materialize)  # fmt: skip
    features_app.command("lookup", epilog=examples(
        "fraudrisk features lookup --customer 42",
        "fraudrisk features lookup --customer 42 --customer 43 --terminal 7",
    ))(lookup)  # fmt: skip
