"""The application database: one engine per URL, and its schema by Alembic migrations.

The platform's relational state (the alert store, identity, cases, the audit log) lives in one
database: SQLite under ``FRAUDRISK_HOME`` by default, PostgreSQL by setting
(``FRAUDRISK_DB__URL``). The identity and case tables are created **only by migrations**
(``migrations/versions``, shipped as package data): ``fraudrisk db upgrade`` applies them, and
so does every embedded (SQLite) start-up. :data:`APP_METADATA` holds the same tables as
SQLAlchemy objects for queries; a test proves the migrations build exactly these tables.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

#: The identity, case and policy tables (``fraudrisk.{identity,cases,policy}.tables``).
APP_METADATA = sa.MetaData()
SUPPORTED = ("sqlite", "postgresql")
#: Head revision of the migrations (a test keeps it equal to the newest script's).
HEAD = "0004"


class DatabaseError(RuntimeError):
    """The database cannot be used: unsupported URL, or its schema is behind the code."""


def create_engine(url: str, **options: Any) -> Engine:
    """An engine for a SQLite or PostgreSQL URL (SQLite in WAL mode, waiting on locks).

    Raises:
        DatabaseError: If the URL is of another database.
    """
    parsed = sa.engine.make_url(url)
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise DatabaseError(f"the platform's database is SQLite or PostgreSQL, not {backend}")
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        _private_file(Path(parsed.database))
    engine = sa.create_engine(url, future=True, **options)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", sqlite_pragmas)
    return engine


def _private_file(path: Path) -> None:
    """Make a new SQLite file readable by its owner only (password hashes, sealed seeds).

    SQLite gives its ``-wal`` and ``-shm`` files the database file's permissions.
    """
    path.parent.mkdir(parents=True, exist_ok=True)  # a fresh HOME
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL + NORMAL sync: durable on commit, fast enough for a stream sink; wait on locks."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def lock_for_write(connection: Connection, pg_lock: int | None = None) -> None:
    """Make the rest of this transaction the only one doing this kind of write.

    SQLite: pysqlite begins a transaction at its first write, so what a transaction reads before
    that is not isolated: two transactions can both read "the last audit hash" or "the last TOTP
    step used" and then both write. This begins the transaction now, waiting for SQLite's write
    lock (``busy_timeout``). PostgreSQL locks rows (``FOR UPDATE``) for most of this; where
    there is no row to lock (the end of a chain, "the active one"), ``pg_lock`` names an
    advisory lock held until the transaction ends.
    """
    if connection.dialect.name == "postgresql":
        if pg_lock is not None:
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": pg_lock})
        return
    driver = connection.connection.dbapi_connection
    if not getattr(driver, "in_transaction", True):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config  # deferred: alembic only when migrating

    config = Config()
    config.set_main_option("script_location", str(resources.files(__package__) / "migrations"))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Apply the migrations up to ``revision``; returns the revision the database is at."""
    from alembic import command  # deferred: alembic only when migrating

    command.upgrade(_alembic_config(engine), revision)
    return current_revision(engine) or ""


def current_revision(engine: Engine) -> str | None:
    """The migration revision the database is at (``None`` before the first)."""
    from alembic.runtime.migration import MigrationContext  # deferred: alembic only here

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_current(engine: Engine) -> None:
    """Fail unless the database is at the code's schema (PostgreSQL is never auto-migrated).

    Raises:
        DatabaseError: Naming the revision found and the command that upgrades it.
    """
    found = current_revision(engine)
    if found != HEAD:
        raise DatabaseError(
            f"the database at {engine.url.render_as_string(hide_password=True)} is at schema "
            f"revision {found or 'none'}, the code needs {HEAD}: run `fraudrisk db upgrade`"
        )


def open_database(url: str, *, migrate: bool | None = None) -> Engine:
    """The engine of the application database, its schema checked (or applied).

    Args:
        url: SQLAlchemy URL.
        migrate: Apply pending migrations; default: for SQLite (embedded mode) only.
    """
    engine = create_engine(url)
    if migrate if migrate is not None else engine.dialect.name == "sqlite":
        upgrade(engine)
    require_current(engine)
    return engine


def utcnow() -> dt.datetime:
    """Now, as the database stores times: naive UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key of the row an ``INSERT`` made."""
    key = result.inserted_primary_key
    if key is None:
        raise DatabaseError("the insert returned no primary key")
    return int(key[0])


def _pg_arrays(connection: Connection, table: sa.Table, names: Sequence[str]) -> str:
    """``unnest(%s::type[], …)`` of the columns ``names`` (one array parameter each)."""
    dialect = connection.dialect
    casts = [f"%s::{table.c[name].type.compile(dialect=dialect)}[]" for name in names]
    return f"unnest({', '.join(casts)})"


def bulk_insert(connection: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows (all with the same keys) at once, in the connection's transaction.

    PostgreSQL gets one ``COPY … FROM STDIN`` (psycopg encodes the rows in C; a multi-row
    ``INSERT`` would make the driver parse thousands of placeholders); SQLite an
    ``executemany``.
    """
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), list(rows))
        return
    names = list(rows[0])
    cursor: Any = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[name] for name in names])
    except Exception as error:
        import psycopg  # deferred: the PostgreSQL driver (loaded already: COPY just ran on it)

        if isinstance(error, psycopg.IntegrityError):  # as SQLAlchemy raises it for an INSERT
            raise sa.exc.IntegrityError(f"COPY {table.name}", None, error) from error
        raise


def bulk_update(
    connection: Connection,
    table: sa.Table,
    key: str,
    rows: Sequence[dict[str, Any]],
    increment: str | None = None,
) -> None:
    """Set columns of many rows matched on ``key`` (every row with the same keys).

    Args:
        connection: In a transaction.
        table: The table.
        key: The column matching each row (a key of every row).
        rows: Column values by name.
        increment: A column to add one to in each row (a version counter).
    """
    if not rows:
        return
    names = [n for n in rows[0] if n != key]
    if connection.dialect.name != "postgresql":
        values: dict[str, Any] = {n: sa.bindparam(f"new_{n}") for n in names}
        if increment:
            values[increment] = table.c[increment] + 1
        statement = table.update().where(table.c[key] == sa.bindparam(f"new_{key}"))
        params = [{f"new_{k}": v for k, v in row.items()} for row in rows]
        connection.execute(statement.values(values), params)
        return
    columns = [key, *names]
    assignments = [f"{n} = v.{n}" for n in names]
    if increment:
        assignments.append(f"{increment} = {table.name}.{increment} + 1")
    sql = (
        f"UPDATE {table.name} SET {', '.join(assignments)} "
        f"FROM {_pg_arrays(connection, table, columns)} AS v({', '.join(columns)}) "
        f"WHERE {table.name}.{key} = v.{key}"
    )
    connection.exec_driver_sql(sql, tuple([row[n] for row in rows] for n in columns))


def allocate_ids(connection: Connection, table: sa.Table, count: int) -> list[int] | None:
    """``count`` ids from a PostgreSQL table's id sequence (None elsewhere: use RETURNING)."""
    if connection.dialect.name != "postgresql" or count == 0:
        return None
    sql = (
        f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) FROM generate_series(1, %s)"
    )
    return [int(i) for (i,) in connection.exec_driver_sql(sql, (count,))]
