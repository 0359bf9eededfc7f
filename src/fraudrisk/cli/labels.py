"""``fraudrisk labels``: fraud labels from outside the platform (chargeback feeds)."""

from __future__ import annotations

import functools
import getpass
from pathlib import Path
from typing import Annotated

import typer

from fraudrisk.config import get_settings
from fraudrisk.console import console, examples

app = typer.Typer(
    name="labels",
    help="Fraud labels: ingest a chargeback feed (labels + cases for missed frauds).",
    no_args_is_help=True,
)


@app.command(
    "ingest",
    epilog=examples(
        "fraudrisk labels ingest chargebacks.csv",
        "fraudrisk labels ingest chargebacks.parquet --publish-topic",
    ),
)
def ingest(
    feed: Annotated[
        Path,
        typer.Argument(
            help="CSV or Parquet: transaction_id, tx_fraud "
            "[, labelled_at, customer_id, tx_amount, tx_datetime].",
            exists=True,
            dir_okay=False,
        ),
    ],
    publish_topic: Annotated[
        bool, typer.Option(help="Also send the labels to the labels topic.")
    ] = False,
) -> None:
    """Label transactions from a chargeback feed; open cases for frauds that never alerted.

    The cases go to the missed-fraud queue. Ingesting the same feed twice opens nothing new.
    """
    from fraudrisk.cases.chargebacks import ChargebackIngester, read_feed  # deferred: pandas, sa
    from fraudrisk.cases.routing import load_rules
    from fraudrisk.data.labels import LabelsTable, publish_labels
    from fraudrisk.identity.audit import Actor
    from fraudrisk.io.database import open_database
    from fraudrisk.io.lake import Lake

    settings = get_settings()
    lake = Lake.open(settings.lake_uri, settings.lake)
    send = functools.partial(publish_labels, settings) if publish_topic else None
    rules = load_rules(settings.cases.routing_file or None)
    ingester = ChargebackIngester(
        open_database(settings.db_url), LabelsTable.beside(lake.storage), send, rules=rules
    )
    try:
        done = ingester.ingest(Actor(f"cli:{getpass.getuser()}", "cli"), read_feed(str(feed)))
    except ValueError as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(1) from None
    console.print(
        f"{done.labels:,} labels ({done.frauds:,} frauds): {done.missed_cases:,} missed-fraud "
        "cases opened"
    )
    if done.undescribed:
        console.print(
            f"[yellow]{len(done.undescribed):,} frauds were never scored and the feed does not "
            f"describe them (customer_id, tx_amount, tx_datetime): no case, e.g. "
            f"{done.undescribed[:5]}[/]"
        )
