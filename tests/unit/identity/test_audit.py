"""The audit log on SQLite: every action recorded, append-only in the database, hash-chained."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from tests.unit.identity.test_sessions import (
    ADMIN,
    PASSWORD,
    Clock,
    code,
    database,
    dump,
    enrol,
    fast_argon2,
    make_identity,
    sign_in,
)

from fraudrisk.identity import audit
from fraudrisk.identity.audit import Actor, AuditLog, AuditQuery
from fraudrisk.identity.errors import AccountLockedError, LoginError, UserExistsError
from fraudrisk.identity.roles import Role
from fraudrisk.identity.service import Identity
from fraudrisk.identity.tables import AUDIT_LOG


@pytest.fixture(scope="module", autouse=True)
def _fast_argon2() -> Iterator[None]:
    with fast_argon2():
        yield


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = database(tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def identity(engine: Engine, clock: Clock) -> Identity:
    return make_identity(engine, clock, max_failed_logins=1)


def actions(log: AuditLog) -> list[tuple[str, str, str, str]]:
    """(actor, action, object type, object id) of every entry, oldest first."""
    entries = reversed(log.read(AuditQuery(limit=1000)))
    return [(e["actor"], e["action"], e["object_type"], e["object_id"]) for e in entries]


def test_every_action_is_recorded_with_actor_action_and_object(
    identity: Identity, clock: Clock
) -> None:
    ana = enrol(identity, "ana")
    session = sign_in(identity, ana, clock)
    clock.advance(seconds=30)
    with pytest.raises(LoginError):
        identity.sessions.login("ana", "not the password", code(ana, clock))
    with pytest.raises(AccountLockedError):
        identity.sessions.login("ana", "not the password", code(ana, clock))
    identity.accounts.unlock(ADMIN, "ana")
    token = identity.sessions.create_api_token(ADMIN, "ana", "cases:read", ttl_days=7)
    identity.accounts.set_role(ADMIN, "ana", Role.SENIOR_ANALYST)
    identity.accounts.reset_mfa(ADMIN, "ana")
    identity.sessions.revoke(ADMIN, "ana", token.token_id)
    identity.accounts.disable(ADMIN, "ana")
    identity.accounts.enable(ADMIN, "ana")

    admin, user, tid = "root-admin", ("user", "ana"), str(token.token_id)
    assert actions(identity.audit) == [
        (admin, "user.create", *user),
        ("ana", "login", *user),
        ("ana", "login.failed", *user),
        ("ana", "login.locked", *user),
        (admin, "user.unlock", *user),
        (admin, "token.create", "token", tid),
        (admin, "user.role", *user),
        (admin, "user.reset-mfa", *user),
        (admin, "token.revoke", "token", tid),
        (admin, "user.disable", *user),
        (admin, "user.enable", *user),
    ]
    entries = {e["action"]: e for e in identity.audit.read()}
    assert entries["user.create"]["change"] == {
        "role": "analyst",
        "source": "local",
        "mfa_required": True,
    }
    assert entries["token.create"]["change"] == {"user": "ana", "scopes": "cases:read", "days": 7}
    assert entries["user.role"]["change"] == {"role": "senior-analyst"}
    assert entries["user.disable"]["change"] == {"disabled": True}
    assert entries["user.create"]["source"] == "test"

    written = identity.audit.read(AuditQuery(limit=1000))
    shown = json.dumps([e["change"] for e in written], default=str)
    for secret in (PASSWORD, session, token.token, *ana.recovery_codes, ana.secret):
        assert secret not in shown
    assert identity.audit.verify() is None


def test_an_action_that_fails_records_nothing(identity: Identity) -> None:
    identity.accounts.create(ADMIN, "bo", Role.ANALYST, None, mfa_required=False)
    with pytest.raises(UserExistsError):
        identity.accounts.create(ADMIN, "bo", Role.ANALYST, None)
    with pytest.raises(ValueError):
        identity.sessions.create_api_token(ADMIN, "bo", "users:manage")
    assert [a[1] for a in actions(identity.audit)] == ["user.create"]


def test_the_entry_is_part_of_the_callers_transaction(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as connection:
        audit.record(connection, ADMIN, "case.claim", "case", 7)
        raise RuntimeError("the change failed")
    assert AuditLog(engine).read() == []


def test_read_filters_and_pages(engine: Engine) -> None:
    with engine.begin() as connection:
        for i in range(5):
            actor = Actor("ana" if i % 2 == 0 else "bo", "api")
            audit.record(connection, actor, "case.claim", "case", i, {"n": i})
    log = AuditLog(engine)
    assert [e["object_id"] for e in log.read()] == ["4", "3", "2", "1", "0"]
    assert [e["object_id"] for e in log.read(AuditQuery(actor="bo"))] == ["3", "1"]
    assert [e["change"] for e in log.read(AuditQuery(object_id="2"))] == [{"n": 2}]
    page = log.read(AuditQuery(limit=2))
    following = log.read(AuditQuery(limit=2, before_id=page[-1]["id"]))
    assert [e["object_id"] for e in page + following] == ["4", "3", "2", "1"]
    assert log.read(AuditQuery(action="user.create")) == []
    newest = page[0]["at"]
    assert [e["object_id"] for e in log.read(AuditQuery(since=newest))] == ["4"]
    assert "4" not in [e["object_id"] for e in log.read(AuditQuery(until=newest))]


def test_the_database_refuses_update_and_delete(engine: Engine) -> None:
    with engine.begin() as connection:
        audit.record(connection, ADMIN, "user.create", "user", "ana")
    statements = [
        AUDIT_LOG.update().values(actor="someone else"),
        AUDIT_LOG.delete(),
        sa.text("UPDATE audit_log SET change = '{}' WHERE id = 1"),
        sa.text("DELETE FROM audit_log"),
    ]
    for statement in statements:
        refused = pytest.raises(sa.exc.DBAPIError, match="audit_log is append-only")
        with refused, engine.begin() as connection:
            connection.execute(statement)
    assert [e["actor"] for e in AuditLog(engine).read()] == ["root-admin"]


def test_verify_finds_an_altered_or_removed_entry(engine: Engine) -> None:
    with engine.begin() as connection:
        for i in range(6):
            audit.record(connection, ADMIN, "case.resolve", "case", i, {"disposition": "fraud"})
    log = AuditLog(engine)
    assert log.verify() is None
    ids = [e["id"] for e in reversed(log.read())]

    with engine.begin() as connection:  # someone with write access drops the triggers ...
        connection.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        connection.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
        connection.execute(  # ... and rewrites history
            AUDIT_LOG.update()
            .where(AUDIT_LOG.c.id == ids[3])
            .values(change=json.dumps({"disposition": "legitimate"}))
        )
    assert log.verify() == ids[3]

    with engine.begin() as connection:
        original = connection.execute(
            sa.select(AUDIT_LOG.c.change).where(AUDIT_LOG.c.id == ids[2])
        ).scalar()
        connection.execute(  # put the entry back: intact again
            AUDIT_LOG.update().where(AUDIT_LOG.c.id == ids[3]).values(change=original)
        )
    assert log.verify() is None

    with engine.begin() as connection:
        connection.execute(AUDIT_LOG.delete().where(AUDIT_LOG.c.id == ids[1]))
    assert log.verify() == ids[2]  # the entry after the removed one no longer links

    with engine.begin() as connection:  # a forged entry with a recomputed own hash
        connection.execute(AUDIT_LOG.delete().where(AUDIT_LOG.c.id >= ids[2]))
    assert log.verify() is None
    with engine.begin() as connection:
        audit.record(connection, ADMIN, "case.resolve", "case", 9)
        connection.execute(
            AUDIT_LOG.update().where(AUDIT_LOG.c.id == ids[0]).values(actor="someone else")
        )
    assert log.verify() == ids[0]


def test_concurrent_writers_keep_the_chain_intact(engine: Engine) -> None:
    threads, each = 8, 15
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        start.wait()
        try:
            for i in range(each):
                with engine.begin() as connection:
                    audit.record(connection, Actor(f"worker-{worker}", "api"), "x", "case", i)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    workers = [threading.Thread(target=write, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    log = AuditLog(engine)
    assert len(log.read(AuditQuery(limit=1000))) == threads * each
    assert log.verify() is None


def test_the_log_holds_no_secret(identity: Identity, engine: Engine, clock: Clock) -> None:
    cy = enrol(identity, "cy")
    session = sign_in(identity, cy, clock)
    token = identity.sessions.create_api_token(ADMIN, "cy").token
    with engine.connect() as connection:
        rows = connection.execute(sa.select(AUDIT_LOG)).all()
    text = repr(rows)
    assert "cy" in text and dump(engine)  # the rows are there to search
    for secret in (PASSWORD, session, token, cy.secret, *cy.recovery_codes):
        assert secret not in text
