"""``fraudrisk score batch`` (lake partitions or files) and ``fraudrisk stream kinesis``."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Annotated

import typer

from fraudrisk.console import console, err_console, examples, progress_bar
from fraudrisk.streaming.cli import stream_app

if TYPE_CHECKING:
    from fraudrisk.config import Settings
    from fraudrisk.io.lake import Lake
    from fraudrisk.streaming.batch import BatchOptions, BatchTotals
    from fraudrisk.streaming.batch_sources import Source

score_app = typer.Typer(
    help="Score transactions in batch: lake day partitions, or CSV/Parquet files (local or S3).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def register(app: typer.Typer) -> None:
    """Add ``score batch`` to the root app and ``kinesis`` to ``fraudrisk stream``."""
    app.add_typer(score_app, name="score")
    stream_app.command("kinesis", epilog=examples(
        "fraudrisk stream kinesis --stream transactions",
        "FRAUDRISK_KINESIS__ENDPOINT_URL=http://127.0.0.1:5000 fraudrisk stream kinesis "
        "--max-records 10000 --idle-exit 10",
    ))(kinesis)  # fmt: skip


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@score_app.command(
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
    from fraudrisk.config import get_settings
    from fraudrisk.io.lake import Lake
    from fraudrisk.streaming.batch import rebuild_state, run_batch
    from fraudrisk.streaming.records import build_runtime

    settings = get_settings()
    first, last = _date(start), _date(end)
    the_lake = Lake.open(lake or settings.lake_uri, settings.lake)
    source, options = _plan(settings, the_lake, input_uri, first, last, out, quarantine)
    options.chunk_size, options.replay_labels = chunk_size, state_from_lake
    try:
        runtime = build_runtime(settings, online_state=online_state and not state_from_lake,
                                require_model=True)  # fmt: skip
    except RuntimeError as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    err_console.print(f"scoring {source.description} with {runtime.variants.describe()}")
    replayed = rebuild_state(runtime.cache, the_lake, first, chunk_size) if state_from_lake else 0
    with progress_bar() as bar:
        task = bar.add_task("scoring", total=len(source.names))
        totals = run_batch(runtime, source, options, on_unit=lambda t: bar.update(
            task, completed=t.units, description=f"{t.rows:,} rows"))  # fmt: skip
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
    from fraudrisk.io.storage import open_storage
    from fraudrisk.streaming.batch import BatchOptions
    from fraudrisk.streaming.batch_sources import file_source, lake_source, quarantine_storage

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


def kinesis(
    stream: Annotated[
        str | None, typer.Option(help="Stream name (default: FRAUDRISK_KINESIS__STREAM_NAME).")
    ] = None,
    consumer: Annotated[
        str | None, typer.Option(help="Checkpoint name (default: the settings').")
    ] = None,
    max_records: Annotated[
        int | None, typer.Option(help="Stop after this many records (default: run forever).")
    ] = None,
    idle_exit: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without records.")
    ] = None,
    online_state: Annotated[
        bool | None, typer.Option(help="Seed entity state from the Feast online store.")
    ] = None,
    checkpoint_first: Annotated[
        bool, typer.Option(hidden=True, help="Negative control of the tests: checkpoint first.")
    ] = False,
) -> None:
    """Consume a Kinesis stream: score, write the alert store, then checkpoint each shard.

    Invalid records go to the dead letters (FRAUDRISK_KINESIS__DLQ_URI) with their reason.
    SIGTERM finishes the current batch, checkpoints it and exits 0.
    """
    import os

    from fraudrisk.config import get_settings
    from fraudrisk.streaming.kinesis import CRASH_AFTER_SINK_ENV, KinesisConsumer, KinesisOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    ks = settings.kinesis
    options = KinesisOptions(stream or ks.stream_name, consumer or ks.consumer_name,
                             ks.batch_size, ks.poll_interval_s, ks.start_position, max_records,
                             idle_exit, checkpoint_first,
                             int(os.environ.get(CRASH_AFTER_SINK_ENV, "0") or 0))  # fmt: skip
    state = ks.online_state if online_state is None else online_state
    reader = KinesisConsumer.from_settings(settings, options, online_state=state)
    err_console.print(f"consuming kinesis stream {options.stream} as {options.consumer}: "
                      f"{reader.processor.runtime.variants.describe()}")  # fmt: skip
    totals = reader.run()
    console.print(
        f"consumed {totals.consumed:,} records ({totals.rate:,.0f}/s): {totals.scored:,} scored "
        f"({totals.new_scores:,} new), {totals.rejected:,} dead-lettered, "
        f"{totals.new_alerts:,} new alerts"
    )
