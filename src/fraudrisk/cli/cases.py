"""``fraudrisk cases``: serve the case API, turn pending alerts into cases."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from fraudrisk.config import get_settings
from fraudrisk.console import console, examples

app = typer.Typer(
    name="cases",
    help="Case management: alerts become cases that analysts route, work and resolve.",
    no_args_is_help=True,
)


@app.command(
    "ingest",
    epilog=examples(
        "fraudrisk cases ingest", "FRAUDRISK_DB__URL=postgresql+psycopg://… fraudrisk cases ingest"
    ),
)
def ingest() -> None:
    """Put every pending alert of the alert store into a case (idempotent), then exit."""
    from fraudrisk.cases.service import case_ingester  # deferred: sqlalchemy, pydantic models
    from fraudrisk.io.database import open_database

    settings = get_settings()
    done = case_ingester(settings, open_database(settings.db_url)).ingest_all()
    console.print(
        f"{done.alerts:,} alerts → {done.opened:,} new cases, {done.joined:,} joined open ones"
    )


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
    loop = IngestLoop(case_ingester(settings, services.engine), ingest_every)
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
