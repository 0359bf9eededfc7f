"""The ``fraudrisk`` command line: the root app, composed of each ``fraudrisk.cli`` module's app."""

from __future__ import annotations

import typer

from fraudrisk.cli import (
    api,
    canary,
    cases,
    config,
    dashboard,
    data,
    db,
    demo,
    features,
    ingest,
    kafka,
    labels,
    lake,
    monitor,
    pipeline,
    policy,
    score,
    serve,
    stream,
    train,
    users,
)
from fraudrisk.console import examples

app = typer.Typer(
    name="fraudrisk",
    help="fraudrisk — real-time card-transaction fraud risk platform.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    epilog=examples(
        "fraudrisk demo",
        "fraudrisk simulate --preset handbook --out data/lake",
        "fraudrisk ingest transactions.csv --lake data/lake",
        "fraudrisk config show",
    ),
)
#: The modules of ``fraudrisk.cli`` with commands, in the order ``fraudrisk --help`` lists them:
#: the top-level commands (apps without a name: add_typer merges their commands in), then the
#: command groups (apps with a name).
MODULES = (
    *(demo, data, ingest, train, serve),
    *(config, lake, features, kafka, stream, pipeline, canary, api, score, monitor),
    *(cases, labels, db, users, policy, dashboard),
)
for module in MODULES:
    app.add_typer(module.app)


def main() -> None:
    """Entry point of the ``fraudrisk`` script."""
    app()
