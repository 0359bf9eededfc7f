"""``fraudrisk api``: serve the Transaction API; create API keys."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from fraudrisk.config import ApiKeySettings, get_settings
from fraudrisk.console import console, examples

app = typer.Typer(
    name="api",
    help="The Transaction API (REST + WebSocket): serve it, manage its API keys.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
keys_app = typer.Typer(
    name="keys", help="API keys (stored hashed in the settings).", no_args_is_help=True
)
app.add_typer(keys_app)


@app.command(
    "serve",
    epilog=examples(
        "fraudrisk api serve",
        "fraudrisk api serve --host 127.0.0.1 --port 8000",
        "FRAUDRISK_API__DEFAULT_MODE=async fraudrisk api serve",
    ),
)
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings).")] = None,
) -> None:
    """Serve the API with uvicorn: the model loads at start (rules only until it does).

    Uvicorn's access log is off: the API's own (``fraudrisk.api.access``) logs route
    templates, never query strings or bodies.
    """
    import uvicorn  # heavy: uvicorn, fastapi, pandas

    from fraudrisk.api.app import create_app

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asgi_app = create_app(settings)
    uvicorn.run(
        asgi_app,
        host=host or settings.api.host,
        port=port or settings.api.port,
        access_log=False,
        log_config=None,
        ws_max_size=65_536,
    )


@keys_app.command(
    "create",
    epilog=examples(
        "fraudrisk api keys create --client acme",
        "fraudrisk api keys create --client dashboard --scope scores:read",
    ),
)
def create_key(
    client: Annotated[str, typer.Option(help="Client name (rate limits, metrics).")],
    scope: Annotated[
        list[str] | None,
        typer.Option(help="Scope (repeatable); default transactions:write and scores:read."),
    ] = None,
) -> None:
    """Print a new API key once, and the settings entry holding only its hash."""
    # heavy: jwt, cryptography
    from fraudrisk.api.auth import SCOPE_STREAM, SCOPE_WRITE, hash_api_key, new_api_key

    key = new_api_key()
    entry = ApiKeySettings(
        client=client, key_hash=hash_api_key(key), scopes=scope or [SCOPE_WRITE, SCOPE_STREAM]
    )
    console.print(f"API key for {client} (shown once, store it now):")
    console.print(key, markup=False, highlight=False)
    console.print("\nSettings entry (append to FRAUDRISK_API__KEYS, a JSON list):")
    console.print(json.dumps(entry.model_dump()), markup=False, highlight=False, soft_wrap=True)
