"""``fraudrisk db``: the application database's schema (Alembic migrations)."""

from __future__ import annotations

import typer

from fraudrisk.config import get_settings
from fraudrisk.console import console, examples

app = typer.Typer(
    name="db",
    help="The application database (users, cases, audit log): migrate its schema.",
    no_args_is_help=True,
)


@app.command(
    "upgrade",
    epilog=examples(
        "fraudrisk db upgrade",
        "FRAUDRISK_DB__URL=postgresql+psycopg://fraudrisk@db/fraudrisk fraudrisk db upgrade",
    ),
)
def upgrade(
    revision: str = typer.Option("head", help="Migrate up to this revision."),
) -> None:
    """Apply the pending migrations (embedded SQLite applies them itself at start-up)."""
    from fraudrisk.io import database  # deferred: sqlalchemy + alembic

    engine = database.create_engine(get_settings().db_url)
    before = database.current_revision(engine)
    after = database.upgrade(engine, revision)
    shown = engine.url.render_as_string(hide_password=True)
    console.print(f"{shown}: schema revision {before or 'none'} → [bold]{after}[/]")


@app.command("current", epilog=examples("fraudrisk db current"))
def current() -> None:
    """Print the schema revision the database is at, and the one the code needs."""
    from fraudrisk.io import database  # deferred: sqlalchemy + alembic

    engine = database.create_engine(get_settings().db_url)
    found = database.current_revision(engine)
    state = "up to date" if found == database.HEAD else "behind: run `fraudrisk db upgrade`"
    console.print(f"at {found or 'none'}, code needs {database.HEAD} ({state})")
