"""``fraudrisk cases``: serve the case API, turn pending alerts into cases."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from fraudrisk.config import get_settings
from fraudrisk.console import console, examples

if TYPE_CHECKING:
    from fraudrisk.cases.ingest import CaseIngester, Ingested

log = logging.getLogger(__name__)

app = typer.Typer(
    name="cases",
    help="Case management: alerts become cases that analysts route, work and resolve.",
    no_args_is_help=True,
)


@app.command(
    "ingest",
    epilog=examples(
        "fraudrisk cases ingest",
        "FRAUDRISK_DB__URL=postgresql+psycopg://… fraudrisk cases ingest",
        "fraudrisk cases ingest --every 0.5   # keep ingesting until SIGTERM or Ctrl-C",
    ),
)
def ingest(
    every: Annotated[
        float,
        typer.Option(
            min=0,
            help="Keep ingesting: a round every SECONDS until SIGTERM or Ctrl-C (which end "
            "it after the current batch); 0 = once, then exit.",
        ),
    ] = 0.0,
) -> None:
    """Put every pending alert of the alert store into a case (idempotent).

    Once by default; with --every, a loop beside the scorers (no case API: see serve).
    """
    from fraudrisk.cases.service import case_ingester  # deferred: sqlalchemy, pydantic models
    from fraudrisk.io.database import open_database

    settings = get_settings()
    ingester = case_ingester(settings, open_database(settings.db_url))
    done = _ingest_every(ingester, every) if every > 0 else ingester.ingest_all()
    console.print(
        f"{done.alerts:,} alerts → {done.opened:,} new cases, {done.joined:,} joined open ones"
    )


def _ingest_every(ingester: CaseIngester, every_s: float) -> Ingested:
    """Ingest a round every ``every_s`` seconds until SIGTERM or SIGINT; returns the totals.

    A round that fails (the database may be down) is logged and retried at the next one.
    """
    from sqlalchemy.exc import SQLAlchemyError  # deferred: sqlalchemy only when ingesting

    from fraudrisk.cases.ingest import Ingested

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("ingesting pending alerts every %.1f s until SIGTERM or Ctrl-C", every_s)
    total = Ingested()
    while not stop.is_set():
        try:
            done = ingester.ingest_all()
        except SQLAlchemyError:
            log.exception("case ingestion failed; retrying in %.1f s", every_s)
        else:
            total.alerts += done.alerts
            total.opened += done.opened
            total.joined += done.joined
            if done.alerts:
                log.info("ingested %d alerts: %d cases opened", done.alerts, done.opened)
        stop.wait(every_s)
    return total


@app.command(
    "serve",
    epilog=examples("fraudrisk cases serve", "fraudrisk cases serve --port 8090 --host 0.0.0.0"),
)
def serve(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: settings, 8090).")] = None,
    ingest_every: Annotated[
        float, typer.Option(help="Seconds between ingestion rounds; 0 = do not ingest.")
    ] = 2.0,
) -> None:
    """Serve the case API (``/docs`` for its OpenAPI) and ingest alerts in the background."""
    import uvicorn  # deferred: uvicorn, fastapi

    from fraudrisk.cases.api import create_app
    from fraudrisk.cases.service import IngestLoop, case_ingester, case_services

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    services = case_services(settings)
    loop = IngestLoop(case_ingester(settings, services.engine), ingest_every, services.work.outbox)
    if ingest_every > 0:
        loop.start()
    try:
        uvicorn.run(
            create_app(services),
            host=host,
            port=port or settings.cases.port,
            log_config=None,
            access_log=False,
        )
    finally:
        loop.stop()
