"""Identity on a real PostgreSQL server: migrations, the audit trigger, locks under concurrency.

One fresh database for this module on the session's throw-away cluster (``postgres_server``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from tests.unit.identity.test_sessions import (
    ADMIN,
    PASSWORD,
    Clock,
    code,
    enrol,
    make_identity,
    sign_in,
)

import fraudrisk.cases.tables
import fraudrisk.identity.tables
import fraudrisk.policy.tables
from fraudrisk.identity import audit
from fraudrisk.identity.audit import Actor, AuditLog, AuditQuery
from fraudrisk.identity.errors import AccountLockedError, LoginError
from fraudrisk.identity.tables import USERS
from fraudrisk.io import database
from fraudrisk.io.database import APP_METADATA, HEAD, DatabaseError

pytestmark = pytest.mark.integration

#: Imported for their tables: APP_METADATA holds the identity and the case tables.
TABLES = (fraudrisk.identity.tables.USERS, fraudrisk.cases.tables.CASES)


@pytest.fixture(scope="module")
def pg_url(postgres_server: str) -> Iterator[str]:
    """The URL of a database made for this module (dropped after it)."""
    name = f"identity_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_server.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    """The module's database, migrated by ``upgrade`` (PostgreSQL is never auto-migrated)."""
    with pytest.raises(DatabaseError, match=r"revision none.*run `fraudrisk db upgrade`"):
        database.open_database(pg_url)
    plain = database.create_engine(pg_url)
    assert database.upgrade(plain) == HEAD
    plain.dispose()
    database.open_database(pg_url).dispose()  # checks the revision, migrates nothing
    engine = database.create_engine(pg_url, pool_size=24, max_overflow=0)
    database.require_current(engine)
    yield engine
    engine.dispose()


def in_threads(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``count`` threads started together; their results or errors."""
    start = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except BaseException as error:  # returned to the test's thread
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_the_migrations_build_the_metadata_on_postgres(engine: Engine) -> None:
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), APP_METADATA) == []
        assert database.current_revision(engine) == HEAD
        assert database.upgrade(engine) == HEAD  # again: nothing to do


def test_a_bulk_insert_of_a_duplicate_key_is_an_integrity_error(engine: Engine) -> None:
    now = database.utcnow()
    row = {
        "username": "copy-twice",
        "display_name": "copy",
        "role": "analyst",
        "source": "local",
        "mfa_required": True,
        "disabled": False,
        "failed_logins": 0,
        "created_at": now,
        "updated_at": now,
    }
    with pytest.raises(sa.exc.IntegrityError, match="COPY users"), engine.begin() as connection:
        database.bulk_insert(connection, USERS, [row, row])  # COPY, as SQLAlchemy's INSERT fails
    with engine.connect() as connection:
        found = connection.execute(sa.select(USERS).where(USERS.c.username == "copy-twice"))
        assert found.all() == []  # the transaction rolled back


def test_the_database_refuses_update_delete_and_truncate_of_the_audit_log(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        audit.record(connection, ADMIN, "user.create", "user", "trigger-check")
    for statement in (
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ):
        refused = pytest.raises(sa.exc.DBAPIError, match="audit_log is append-only")
        with refused, engine.begin() as connection:
            connection.execute(sa.text(statement))
    log = AuditLog(engine)
    assert log.read(AuditQuery(object_id="trigger-check"))[0]["actor"] == ADMIN.username
    assert log.verify() is None


def test_the_sixth_wrong_password_locks_the_account(engine: Engine) -> None:
    clock = Clock()
    identity = make_identity(engine, clock)
    pat = enrol(identity, "pg-lockout")
    for attempt in range(5):
        with pytest.raises(LoginError) as refused:
            identity.sessions.login(pat.username, "wrong password!", code(pat, clock))
        assert type(refused.value) is LoginError, f"locked after {attempt + 1} failures"
    with pytest.raises(AccountLockedError):
        identity.sessions.login(pat.username, "wrong password!", code(pat, clock))
    with pytest.raises(AccountLockedError):
        sign_in(identity, pat, clock)
    clock.advance(minutes=15)
    assert identity.sessions.authenticate(sign_in(identity, pat, clock)).username == pat.username


def test_concurrent_logins_with_one_code_open_exactly_one_session(engine: Engine) -> None:
    clock = Clock()
    identity = make_identity(engine, clock, max_failed_logins=50)  # refusals, not a lockout
    ray = enrol(identity, "pg-replay")
    seen = code(ray, clock)

    outcomes = in_threads(20, lambda _: identity.sessions.login(ray.username, PASSWORD, seen))
    sessions = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if type(o) is LoginError]
    assert (len(sessions), len(refused)) == (1, 19), outcomes
    logins = identity.audit.read(AuditQuery(actor=ray.username, action="login"))
    assert len(logins) == 1
    assert identity.audit.verify() is None


def test_concurrent_audit_records_keep_the_chain_intact(engine: Engine) -> None:
    each = 25
    log = AuditLog(engine)
    before = len(log.read(AuditQuery(limit=1000)))

    def write(worker: int) -> int:
        for i in range(each):
            with engine.begin() as connection:
                audit.record(connection, Actor(f"pg-worker-{worker}", "api"), "x", "case", i)
        return each

    assert in_threads(8, write) == [each] * 8
    assert len(log.read(AuditQuery(limit=1000))) == before + 8 * each
    assert log.verify() is None
