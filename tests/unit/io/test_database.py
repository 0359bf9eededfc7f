"""The application database: the migrations build exactly APP_METADATA, the schema is checked."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import fraudrisk.cases.tables
import fraudrisk.identity.tables
import fraudrisk.policy.tables
from fraudrisk.io import database
from fraudrisk.io.database import APP_METADATA, HEAD, DatabaseError, open_database

#: Imported for their tables: APP_METADATA holds the identity and the case tables.
TABLES = (fraudrisk.identity.tables.USERS, fraudrisk.cases.tables.CASES)

VERSIONS = resources.files("fraudrisk.io") / "migrations" / "versions"


def url(path: Path) -> str:
    return f"sqlite:///{path / 'app.db'}"


def differences(engine: sa.Engine, metadata: sa.MetaData) -> list[object]:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))


def test_the_migrations_build_exactly_app_metadata(tmp_path: Path) -> None:
    engine = open_database(url(tmp_path))
    assert {"users", "tokens", "audit_log", "cases", "queues"} <= set(APP_METADATA.tables)
    assert differences(engine, APP_METADATA) == []

    other = sa.MetaData()  # the comparison can fail: one more table, one more column
    for table in APP_METADATA.tables.values():
        table.to_metadata(other)
    sa.Table("extra", other, sa.Column("id", sa.Integer, primary_key=True))
    other.tables["users"].append_column(sa.Column("nickname", sa.String(16)))
    found = [(d[0], d[-1].name) for d in differences(engine, other)]  # type: ignore[index]
    assert sorted(found) == [("add_column", "nickname"), ("add_table", "extra")]


def test_head_is_the_newest_scripts_revision() -> None:
    scripts = ScriptDirectory(str(VERSIONS.parent))
    assert scripts.get_heads() == [HEAD]
    numbered = sorted(
        re.match(r"(\d+)_", entry.name).group(1)  # type: ignore[union-attr]
        for entry in VERSIONS.iterdir()
        if entry.name.endswith(".py")
    )
    assert numbered[-1] == HEAD
    assert next(s.revision for s in scripts.walk_revisions()) == HEAD  # newest first


def test_open_database_migrates_sqlite_to_head_once(tmp_path: Path) -> None:
    engine = open_database(url(tmp_path))
    assert database.current_revision(engine) == HEAD
    database.require_current(engine)
    assert database.upgrade(engine) == HEAD  # again: nothing to do
    open_database(url(tmp_path)).dispose()
    engine.dispose()


def test_an_unmigrated_database_names_the_upgrade_command(tmp_path: Path) -> None:
    (tmp_path / "app.db").touch()  # an empty database, as a new PostgreSQL one would be
    with pytest.raises(DatabaseError) as behind:
        open_database(url(tmp_path), migrate=False)
    message = str(behind.value)
    assert "schema revision none" in message and f"the code needs {HEAD}" in message
    assert "run `fraudrisk db upgrade`" in message
    engine = database.create_engine(url(tmp_path))
    assert database.current_revision(engine) is None
    assert database.upgrade(engine) == HEAD
    open_database(url(tmp_path), migrate=False).dispose()
    engine.dispose()


def test_the_url_shown_hides_the_password(tmp_path: Path) -> None:
    engine = database.create_engine(url(tmp_path))
    engine.url = engine.url.set(password="hunter2")  # as a PostgreSQL URL would carry it
    with pytest.raises(DatabaseError) as behind:
        database.require_current(engine)
    assert "hunter2" not in str(behind.value)


def test_downgrade_then_upgrade(tmp_path: Path) -> None:
    engine = open_database(url(tmp_path))
    command.downgrade(database._alembic_config(engine), "base")
    assert database.current_revision(engine) is None
    assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    assert database.upgrade(engine) == HEAD
    assert differences(engine, APP_METADATA) == []


def test_only_sqlite_and_postgresql(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="SQLite or PostgreSQL, not mysql"):
        database.create_engine("mysql://user@localhost/fraudrisk")


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = open_database(url(tmp_path))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.exec_driver_sql(  # a token of no user
            "INSERT INTO tokens (user_id, kind, token_hash, name, scopes, source, created_at,"
            " expires_at) VALUES (42, 'api', 'x', 'n', '', '', '2026-01-01', '2026-02-01')"
        )


def test_lock_for_write_begins_the_sqlite_transaction(tmp_path: Path) -> None:
    engine = open_database(url(tmp_path))
    with engine.begin() as connection:
        connection.execute(sa.text("SELECT 1"))
        driver = connection.connection.dbapi_connection
        assert not driver.in_transaction  # type: ignore[union-attr]  (pysqlite: lazily)
        database.lock_for_write(connection)
        assert driver.in_transaction  # type: ignore[union-attr]
        database.lock_for_write(connection)  # already the writer: nothing more
        other = engine.connect()
        other.exec_driver_sql("PRAGMA busy_timeout=0")
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            other.exec_driver_sql("BEGIN IMMEDIATE")
        other.close()
    engine.dispose()


def test_utcnow_is_naive_utc() -> None:
    now = database.utcnow()
    assert now.tzinfo is None


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "home" / "fraudrisk.db"
    engine = open_database(f"sqlite:///{path}")
    engine.dispose()
    assert path.stat().st_mode & 0o777 == 0o600  # password hashes, sealed TOTP seeds
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_mode & 0o077 == 0
