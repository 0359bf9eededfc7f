"""``fraudrisk stream``: the stream scorer (a Kafka consumer group member)."""

from __future__ import annotations

import datetime as dt
import faulthandler
import gc
import logging
import signal
from typing import Annotated

import typer

from fraudrisk.console import console, err_console, examples

stream_app = typer.Typer(
    help="Score the transactions topic: features, model, alert store, scores and alerts topics.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@stream_app.command(
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
    from fraudrisk.config import get_settings
    from fraudrisk.streaming.scorer import StreamOptions, StreamScorer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    # A batch allocates ~10 objects per message, freed by reference counting; the default
    # threshold (700) ran ~6 collections per batch over the whole entity state (~12 % CPU).
    gc.set_threshold(50_000, 50, 100)
    options = StreamOptions(group_id=group, batch_size=batch_size, max_messages=max_messages,
                            idle_exit_s=idle_exit, commit_first=commit_first,
                            kafka_call_timeout_s=kafka_call_timeout)  # fmt: skip
    if transactional_id:
        options.transactional_id = transactional_id
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    before = lake_state_before.date() if lake_state_before else None
    scorer = StreamScorer.from_settings(get_settings(), options, online_state=online_state,
                                        lake_state_before=before)  # fmt: skip
    err_console.print(f"scoring {get_settings().kafka.transactions_topic} as group {group}: "
                      f"{scorer.variants.describe()}")  # fmt: skip
    totals = scorer.run()
    console.print(
        f"consumed {totals.consumed:,} messages ({totals.rate:,.0f}/s) in {totals.batches:,} "
        f"batches: {totals.scored:,} scored, {totals.rejected:,} to the DLQ, "
        f"{totals.new_alerts:,} new alerts",
        soft_wrap=True,
    )
