"""``fraudrisk score batch``: score lake partitions or files into the alert store."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from fraudrisk.config import Settings, get_settings
from fraudrisk.console import console, err_console, examples, progress_bar

if TYPE_CHECKING:
    from fraudrisk.io.lake import Lake
    from fraudrisk.jobs.batch_job import BatchOptions, BatchTotals
    from fraudrisk.jobs.batch_sources import Source

app = typer.Typer(
    name="score",
    help="Score transactions in batch: lake day partitions, or CSV/Parquet files (local or S3).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@app.command(
    "batch",
    epilog=examples(
        "fraudrisk score batch --lake data/lake --start 2018-09-01 --end 2018-09-07",
        "fraudrisk score batch --lake data/lake --start 2018-09-01 --end 2018-09-07 "
        "--state-from-lake --out scores/",
        "fraudrisk score batch --input s3://bucket/incoming/2018-09-08/ --out s3://bucket/scores/",
    ),
)
def batch(
    lake: Annotated[
        str | None,
        typer.Option(
            help="Lake URI (default: the settings'); with --input, for --state-from-lake."
        ),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="First day (default: the lake's first).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Last day (default: the lake's last).")] = None,
    input_uri: Annotated[
        str | None,
        typer.Option(
            "--input", help="Score the CSV/Parquet files under a directory or s3:// prefix."
        ),
    ] = None,
    out: Annotated[
        str | None, typer.Option(help="Also write the scores as Parquet under this URI.")
    ] = None,
    quarantine: Annotated[
        str | None, typer.Option(help="Rejected file rows (default: quarantine/ beside --input).")
    ] = None,
    state_from_lake: Annotated[
        bool, typer.Option(help="Rebuild entity state from the lake days before --start.")
    ] = False,
    online_state: Annotated[
        bool, typer.Option(help="Read entity state from the Feast online store.")
    ] = True,
    chunk_size: Annotated[int, typer.Option(min=1, help="Rows scored per chunk at most.")] = 5000,
) -> None:
    """Score a lake partition range or files into the alert store (re-running changes nothing).

    Entity state comes from the online store, or with --state-from-lake from a chronological
    replay of the lake days before --start (fraud labels included, as a historical replay).
    """
    from fraudrisk.io.lake import Lake  # heavy: pandas, pyarrow, sqlalchemy
    from fraudrisk.jobs.batch_job import rebuild_state, run_batch
    from fraudrisk.jobs.runtime import build_runtime

    settings = get_settings()
    first, last = _date(start), _date(end)
    the_lake = Lake.open(lake or settings.lake_uri, settings.lake)
    source, options = _plan(settings, the_lake, input_uri, first, last, out, quarantine)
    options.chunk_size, options.replay_labels = chunk_size, state_from_lake
    try:
        runtime = build_runtime(
            settings, online_state=online_state and not state_from_lake, require_model=True
        )
    except RuntimeError as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    err_console.print(f"scoring {source.description} with {runtime.variants.describe()}")
    replayed = rebuild_state(runtime.cache, the_lake, first, chunk_size) if state_from_lake else 0
    with progress_bar() as bar:
        task = bar.add_task("scoring", total=len(source.names))
        totals = run_batch(
            runtime,
            source,
            options,
            on_unit=lambda t: bar.update(task, completed=t.units, description=f"{t.rows:,} rows"),
        )
    totals.history_rows = replayed
    _summary(totals)
    if totals.refused:
        raise typer.Exit(1)


def _plan(
    settings: Settings,
    lake: Lake,
    input_uri: str | None,
    first: dt.date | None,
    last: dt.date | None,
    out: str | None,
    quarantine: str | None,
) -> tuple[Source, BatchOptions]:
    """The source (files, else the lake's days) and where the outputs go."""
    from fraudrisk.io.storage import open_storage  # heavy: pyarrow, pandas
    from fraudrisk.jobs.batch_job import BatchOptions
    from fraudrisk.jobs.batch_sources import file_source, lake_source, quarantine_storage

    options = BatchOptions(out=open_storage(out, settings.lake) if out else None)
    if input_uri:
        epoch = lake.epoch() or dt.date.fromisoformat(settings.lake.epoch)
        try:
            source = file_source(input_uri, epoch, settings.lake)
        except FileNotFoundError as error:
            raise typer.BadParameter(str(error), param_hint="--input") from None
        options.quarantine = quarantine_storage(input_uri, quarantine, settings.lake)
        return source, options
    days = lake.days()
    if not days:
        raise typer.BadParameter(f"no day partitions in {lake.storage.uri}", param_hint="--lake")
    return lake_source(lake, first or days[0], last or days[-1]), options


def _summary(totals: BatchTotals) -> None:
    console.print(
        f"{totals.rows:,} rows in {totals.units} unit(s), {totals.seconds:.1f} s "
        f"({totals.throughput:,.0f} rows/s): {totals.scored:,} scored "
        f"({totals.new_scores:,} new), {totals.rejected:,} rejected, {totals.alerts:,} alerts "
        f"({totals.new_alerts:,} new)"
        + (f"; state rebuilt from {totals.history_rows:,} lake rows" if totals.history_rows else "")
    )
    for path in totals.quarantined:
        console.print(f"quarantined: {path}")
    for reason in totals.refused:
        err_console.print(f"[red]refused[/red] {reason}")
