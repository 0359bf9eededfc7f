"""``fraudrisk stream``: the stream scorers, of Kafka (``score``) and of Kinesis (``kinesis``)."""

from __future__ import annotations

import datetime as dt
import faulthandler
import gc
import logging
import os
import signal
from typing import Annotated

import typer

from fraudrisk.config import get_settings
from fraudrisk.console import console, err_console, examples

app = typer.Typer(
    name="stream",
    help="Score the transactions topic: features, model, alert store, scores and alerts topics.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@app.command(
    "score",
    epilog=examples(
        "fraudrisk kafka up && fraudrisk stream score",
        "fraudrisk stream score --group scorers --batch-size 20000 --metrics-port 9108",
        "fraudrisk stream score --max-messages 100000 --idle-exit 10",
        "fraudrisk stream score --lake-state-before 2018-09-24   # replaying the lake's last week",
    ),
)
def score(
    group: Annotated[str, typer.Option(help="Consumer group id.")] = "fraudrisk-scorer",
    batch_size: Annotated[int, typer.Option(min=1, help="Messages per batch at most.")] = 10_000,
    max_messages: Annotated[
        int | None, typer.Option(help="Stop after this many messages (default: run forever).")
    ] = None,
    idle_exit: Annotated[
        float | None,
        typer.Option(
            help="Stop after this many seconds without messages, once nothing is left to read "
            "(a broker that is down or restarting is waited for)."
        ),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on 127.0.0.1:PORT.")
    ] = None,
    online_state: Annotated[
        bool, typer.Option(help="Seed entity state from the Feast online store.")
    ] = True,
    lake_state_before: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Rebuild entity state from the lake days before this day instead of the "
            "online store (to replay lake days whose transactions the online state already "
            "holds).",
        ),
    ] = None,
    kafka_call_timeout: Annotated[
        float, typer.Option(help="Restart the process when a Kafka transaction call hangs longer.")
    ] = 60.0,
    commit_first: Annotated[
        bool,
        typer.Option(hidden=True, help="Negative control of the tests: commit before the sink."),
    ] = False,
    transactional_id: Annotated[
        str | None, typer.Option(help="Kafka transactional.id (stable per instance).")
    ] = None,
) -> None:
    """Consume transactions, score them, write the alert store, commit offsets after the sink.

    Malformed messages go to the dead-letter topic with their reason. SIGTERM finishes the
    current batch, commits and exits 0.
    """
    from fraudrisk.jobs.stream_job import StreamJob, StreamOptions  # heavy: confluent_kafka

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    # A batch allocates ~10 objects per message, freed by reference counting; the default
    # threshold (700) ran ~6 collections per batch over the whole entity state (~12 % CPU).
    gc.set_threshold(50_000, 50, 100)
    options = StreamOptions(
        group_id=group,
        batch_size=batch_size,
        max_messages=max_messages,
        idle_exit_s=idle_exit,
        commit_first=commit_first,
        kafka_call_timeout_s=kafka_call_timeout,
    )
    if transactional_id:
        options.transactional_id = transactional_id
    if metrics_port is not None:
        from prometheus_client import start_http_server  # heavy: prometheus_client

        start_http_server(metrics_port, addr="127.0.0.1")
    before = lake_state_before.date() if lake_state_before else None
    scorer = StreamJob.from_settings(
        get_settings(), options, online_state=online_state, lake_state_before=before
    )
    err_console.print(
        f"scoring {get_settings().kafka.transactions_topic} as group {group}: "
        f"{scorer.variants.describe()}"
    )
    totals = scorer.run()
    console.print(
        f"consumed {totals.consumed:,} messages ({totals.rate:,.0f}/s) in {totals.batches:,} "
        f"batches: {totals.scored:,} scored, {totals.rejected:,} to the DLQ, "
        f"{totals.new_alerts:,} new alerts",
        soft_wrap=True,
    )


@app.command(
    "kinesis",
    epilog=examples(
        "fraudrisk stream kinesis --stream transactions",
        "FRAUDRISK_KINESIS__ENDPOINT_URL=http://127.0.0.1:5000 fraudrisk stream kinesis "
        "--max-records 10000 --idle-exit 10",
    ),
)
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
    # heavy: pandas, pyarrow, sqlalchemy
    from fraudrisk.jobs.kinesis_job import CRASH_AFTER_SINK_ENV, KinesisConsumer, KinesisOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    ks = settings.kinesis
    options = KinesisOptions(
        stream or ks.stream_name,
        consumer or ks.consumer_name,
        ks.batch_size,
        ks.poll_interval_s,
        ks.start_position,
        max_records,
        idle_exit,
        checkpoint_first,
        int(os.environ.get(CRASH_AFTER_SINK_ENV, "0") or 0),
    )
    state = ks.online_state if online_state is None else online_state
    reader = KinesisConsumer.from_settings(settings, options, online_state=state)
    err_console.print(
        f"consuming kinesis stream {options.stream} as {options.consumer}: "
        f"{reader.processor.runtime.variants.describe()}"
    )
    totals = reader.run()
    console.print(
        f"consumed {totals.consumed:,} records ({totals.rate:,.0f}/s): {totals.scored:,} scored "
        f"({totals.new_scores:,} new), {totals.rejected:,} dead-lettered, "
        f"{totals.new_alerts:,} new alerts"
    )
