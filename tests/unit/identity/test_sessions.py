"""Logins, lockout, one-time codes, sessions and API tokens on SQLite, with an injected clock.

Each security property is shown from both sides: what must work works, and the same thing one
step further (the sixth wrong password, the replayed code, the expired token) is refused.
The helpers here (clock, identity, enrolled person) are shared with the other identity tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from sqlalchemy.engine import Engine

from fraudrisk.config import IdentitySettings
from fraudrisk.identity import hashing, totp
from fraudrisk.identity.accounts import Accounts
from fraudrisk.identity.audit import Actor, AuditLog
from fraudrisk.identity.errors import (
    AccountLockedError,
    AuthenticationError,
    LoginError,
    PermissionDeniedError,
    UnknownUserError,
)
from fraudrisk.identity.roles import Permission, Role, permissions_of
from fraudrisk.identity.sealing import Sealer
from fraudrisk.identity.service import Identity
from fraudrisk.identity.sessions import Sessions
from fraudrisk.identity.tables import TOKENS, USERS
from fraudrisk.io.database import open_database

PASSWORD = "correct horse battery staple"
ADMIN = Actor("root-admin", "test")
#: The start of every test's clock: one second into a TOTP step, so "the next step" is exact.
START = dt.datetime(2026, 3, 2, 9, 0, 1)
#: One key for every identity over the same database (the seeds it seals must open again).
SEALER = Sealer(Fernet.generate_key())


@dataclass
class Clock:
    """A clock the test moves by hand (naive UTC, as the database stores times)."""

    now: dt.datetime = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class Person:
    """A user as the test knows them: the secrets shown once at enrolment."""

    username: str
    role: Role
    secret: str
    recovery_codes: list[str] = field(repr=False)
    password: str = PASSWORD


@contextlib.contextmanager
def fast_argon2() -> Iterator[None]:
    """Argon2id at its cheapest (1 pass, 1 MiB) for the tests of what surrounds the hash.

    The real parameters cost ~0.2 s a hash on a small runner, and a login test hashes a few
    times; ``test_hashing`` checks the parameters the platform really uses.
    """
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hashing, "_HASHER", cheap)
        yield


def database(path: Path) -> Engine:
    """A migrated SQLite application database in ``path``."""
    return open_database(f"sqlite:///{path / 'app.db'}")


def make_identity(engine: Engine, clock: Clock, **settings: object) -> Identity:
    """Accounts, sessions and the audit log over ``engine``, on ``clock``."""
    identity_settings = IdentitySettings.model_validate(settings)
    return Identity(
        Accounts(engine, SEALER, identity_settings.totp_issuer, clock),
        Sessions(engine, identity_settings, SEALER, clock),
        AuditLog(engine),
    )


def secret_of(uri: str) -> str:
    """The base32 seed in an ``otpauth://`` provisioning URI."""
    return parse_qs(urlparse(uri).query)["secret"][0]


def enrol(identity: Identity, username: str, role: Role | str = Role.ANALYST) -> Person:
    """Create a user (one Argon2id hash) and keep what their enrolment showed."""
    enrolment = identity.accounts.create(ADMIN, username, role, PASSWORD)
    secret = secret_of(enrolment.provisioning_uri)
    return Person(username, Role(role), secret, enrolment.recovery_codes)


def code(person: Person, clock: Clock) -> str:
    """The person's TOTP code now."""
    return totp.code_at(person.secret, clock())


def sign_in(identity: Identity, person: Person, clock: Clock) -> str:
    """Log in with the right password and the current code; returns the session token."""
    return identity.sessions.login(person.username, person.password, code(person, clock)).token


def dump(engine: Engine) -> str:
    """Every statement that would rebuild the SQLite database: all it stores, as text."""
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        return "\n".join(raw.iterdump())  # type: ignore[union-attr]


@pytest.fixture(scope="module", autouse=True)
def _fast_argon2() -> Iterator[None]:
    with fast_argon2():
        yield


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = database(tmp_path_factory.mktemp("sessions"))
    yield engine
    engine.dispose()


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def identity(engine: Engine, clock: Clock) -> Identity:
    return make_identity(engine, clock)


def test_the_right_password_and_code_open_a_session(identity: Identity, clock: Clock) -> None:
    ana = enrol(identity, "ana")
    token = sign_in(identity, ana, clock)
    principal = identity.sessions.authenticate(token)
    assert token.startswith("frs_") and len(token) > 40
    assert (principal.username, principal.role, principal.token_kind) == (
        "ana",
        Role.ANALYST,
        "session",
    )
    assert principal.permissions == permissions_of(Role.ANALYST)
    with pytest.raises(AuthenticationError):
        identity.sessions.authenticate(token + "x")


def test_wrong_password_or_code_or_user_is_one_message(identity: Identity, clock: Clock) -> None:
    bo = enrol(identity, "bo")
    wrong_code = f"{(int(code(bo, clock)) + 1) % 1_000_000:06d}"
    attempts = [
        ("bo", "not the password!", code(bo, clock)),
        ("bo", PASSWORD, wrong_code),
        ("bo", PASSWORD, ""),
        ("nobody", PASSWORD, code(bo, clock)),
    ]
    messages = set()
    for username, password, given in attempts:
        with pytest.raises(LoginError) as refused:
            identity.sessions.login(username, password, given)
        assert type(refused.value) is LoginError
        messages.add(str(refused.value))
    assert messages == {"wrong username, password or code"}
    with identity.accounts.engine.connect() as connection:
        failed = connection.execute(
            sa.select(USERS.c.failed_logins).where(USERS.c.username == "bo")
        ).scalar()
    assert failed == 3  # a wrong or missing code counts like a wrong password


def test_the_sixth_wrong_password_locks_the_account(identity: Identity, clock: Clock) -> None:
    cy = enrol(identity, "cy")
    for attempt in range(5):
        with pytest.raises(LoginError) as refused:
            identity.sessions.login("cy", f"wrong password {attempt}", code(cy, clock))
        assert type(refused.value) is LoginError, f"locked after {attempt + 1} failures"
    assert identity.accounts.get("cy").locked_until is None
    with pytest.raises(AccountLockedError) as locked:
        identity.sessions.login("cy", "wrong password 6", code(cy, clock))
    assert locked.value.until == START + dt.timedelta(minutes=15)
    assert "locked until" in str(locked.value)
    assert identity.accounts.get("cy").locked_until == locked.value.until

    clock.advance(minutes=15, seconds=-1)
    with pytest.raises(AccountLockedError):  # the right password and code, while locked
        sign_in(identity, cy, clock)
    clock.advance(seconds=1)  # lockout_minutes later
    assert identity.sessions.authenticate(sign_in(identity, cy, clock)).username == "cy"
    assert identity.accounts.get("cy").locked_until is None


def test_max_failed_logins_is_a_setting(engine: Engine, clock: Clock) -> None:
    identity = make_identity(engine, clock, max_failed_logins=1, lockout_minutes=1)
    dee = enrol(identity, "dee")
    with pytest.raises(LoginError) as first:
        identity.sessions.login("dee", "wrong password!", code(dee, clock))
    assert type(first.value) is LoginError
    with pytest.raises(AccountLockedError) as second:
        identity.sessions.login("dee", "wrong password!", code(dee, clock))
    assert second.value.until == clock() + dt.timedelta(minutes=1)


def test_a_totp_code_cannot_be_replayed(identity: Identity, clock: Clock) -> None:
    eve = enrol(identity, "eve")
    seen = code(eve, clock)
    identity.sessions.login("eve", PASSWORD, seen)
    with pytest.raises(LoginError):
        identity.sessions.login("eve", PASSWORD, seen)
    clock.advance(seconds=10)  # same step, a little later: still the same, spent code
    with pytest.raises(LoginError):
        identity.sessions.login("eve", PASSWORD, seen)
    clock.advance(seconds=totp.STEP_SECONDS)  # the next step's code works
    assert code(eve, clock) != seen
    identity.sessions.login("eve", PASSWORD, code(eve, clock))


def test_a_code_older_than_the_last_one_used_is_refused(identity: Identity, clock: Clock) -> None:
    fay = enrol(identity, "fay")
    earlier = code(fay, clock)
    clock.advance(seconds=totp.STEP_SECONDS)
    identity.sessions.login("fay", PASSWORD, code(fay, clock))
    with pytest.raises(LoginError):  # within the skew window, but before the step used
        identity.sessions.login("fay", PASSWORD, earlier)


def test_a_recovery_code_works_once(identity: Identity, clock: Clock) -> None:
    gus = enrol(identity, "gus")
    first, second = gus.recovery_codes[:2]
    identity.sessions.login("gus", PASSWORD, first)
    with pytest.raises(LoginError):
        identity.sessions.login("gus", PASSWORD, first)
    identity.sessions.login("gus", PASSWORD, f"  {second.upper()} ")
    with pytest.raises(LoginError):
        identity.sessions.login("gus", PASSWORD, "aaaa-bbbb-cccc")


def test_a_session_is_useless_after_logout(identity: Identity, clock: Clock) -> None:
    hal = enrol(identity, "hal")
    token = sign_in(identity, hal, clock)
    identity.sessions.authenticate(token)
    identity.sessions.logout(token)
    with pytest.raises(AuthenticationError):
        identity.sessions.authenticate(token)
    with pytest.raises(AuthenticationError):
        identity.sessions.logout(token)


def test_a_session_and_a_token_are_useless_after_expiry(identity: Identity, clock: Clock) -> None:
    ivy = enrol(identity, "ivy")
    session = sign_in(identity, ivy, clock)
    token = identity.sessions.create_api_token(ADMIN, "ivy", ttl_days=1).token
    clock.advance(hours=12, seconds=-1)
    identity.sessions.authenticate(session)
    clock.advance(seconds=1)  # session_hours after the login
    with pytest.raises(AuthenticationError):
        identity.sessions.authenticate(session)
    identity.sessions.authenticate(token)
    clock.advance(hours=12)  # a day after the token was issued
    with pytest.raises(AuthenticationError):
        identity.sessions.authenticate(token)


def test_sessions_and_tokens_are_useless_after_revocation(identity: Identity, clock: Clock) -> None:
    jo = enrol(identity, "jo")
    session = sign_in(identity, jo, clock)
    kept = identity.sessions.create_api_token(ADMIN, "jo", name="kept")
    revoked = identity.sessions.create_api_token(ADMIN, "jo", name="revoked")
    identity.sessions.revoke(ADMIN, "jo", revoked.token_id)
    with pytest.raises(AuthenticationError):
        identity.sessions.authenticate(revoked.token)
    identity.sessions.authenticate(kept.token)
    identity.sessions.authenticate(session)

    assert identity.sessions.logout_everywhere(ADMIN, "jo") == 1
    with pytest.raises(AuthenticationError):
        identity.sessions.authenticate(session)
    identity.sessions.authenticate(kept.token)  # sign-out everywhere ends sessions only


def test_revoking_another_users_token_changes_nothing(identity: Identity) -> None:
    identity.accounts.create(ADMIN, "kim", Role.ANALYST, None, mfa_required=False)
    identity.accounts.create(ADMIN, "lee", Role.ANALYST, None, mfa_required=False)
    kims = identity.sessions.create_api_token(ADMIN, "kim")
    with pytest.raises(UnknownUserError, match="lee has no unrevoked token"):
        identity.sessions.revoke(ADMIN, "lee", kims.token_id)
    identity.sessions.authenticate(kims.token)
    identity.sessions.revoke(ADMIN, "kim", kims.token_id)
    with pytest.raises(UnknownUserError):  # revoked already: said, not silently done twice
        identity.sessions.revoke(ADMIN, "kim", kims.token_id)


def test_tokens_are_listed_with_their_last_use_never_their_secret(
    identity: Identity, clock: Clock
) -> None:
    identity.accounts.create(ADMIN, "liv", Role.ANALYST, None, mfa_required=False)
    issued = identity.sessions.create_api_token(ADMIN, "liv", "cases:read", name="export")
    (listed,) = identity.sessions.tokens("liv")
    assert (listed.id, listed.kind, listed.name, listed.scopes) == (
        issued.token_id,
        "api",
        "export",
        "cases:read",
    )
    assert listed.last_used_at is None and issued.token not in repr(listed)
    identity.sessions.authenticate(issued.token)
    first_use = identity.sessions.tokens("liv")[0].last_used_at
    assert first_use == clock()
    clock.advance(seconds=30)
    identity.sessions.authenticate(issued.token)  # within the minute: not written again
    assert identity.sessions.tokens("liv")[0].last_used_at == first_use
    clock.advance(seconds=31)
    identity.sessions.authenticate(issued.token)
    assert identity.sessions.tokens("liv")[0].last_used_at == clock()
    identity.sessions.revoke(ADMIN, "liv", issued.token_id)
    assert identity.sessions.tokens("liv") == []
    assert [t.id for t in identity.sessions.tokens("liv", active_only=False)] == [issued.token_id]


def test_disabling_a_user_ends_their_sessions_and_tokens(identity: Identity, clock: Clock) -> None:
    max_ = enrol(identity, "max")
    session = sign_in(identity, max_, clock)
    token = identity.sessions.create_api_token(ADMIN, "max").token
    identity.accounts.disable(ADMIN, "max")
    for presented in (session, token):
        with pytest.raises(AuthenticationError):
            identity.sessions.authenticate(presented)
    clock.advance(seconds=totp.STEP_SECONDS)
    with pytest.raises(LoginError):
        sign_in(identity, max_, clock)

    identity.accounts.enable(ADMIN, "max")
    for presented in (session, token):  # enabling again does not bring old ones back
        with pytest.raises(AuthenticationError):
            identity.sessions.authenticate(presented)
    identity.sessions.authenticate(sign_in(identity, max_, clock))


def test_a_disabled_user_is_refused_even_before_revocation(identity: Identity) -> None:
    identity.accounts.create(ADMIN, "ned", Role.ANALYST, None, mfa_required=False)
    token = identity.sessions.create_api_token(ADMIN, "ned").token
    with identity.accounts.engine.begin() as connection:  # disabled, tokens not yet revoked
        connection.execute(USERS.update().where(USERS.c.username == "ned").values(disabled=True))
    with pytest.raises(AuthenticationError):
        identity.sessions.authenticate(token)


def test_api_token_scopes_cap_the_permissions(identity: Identity) -> None:
    identity.accounts.create(ADMIN, "oli", Role.SENIOR_ANALYST, None, mfa_required=False)
    full = identity.sessions.authenticate(identity.sessions.create_api_token(ADMIN, "oli").token)
    assert full.permissions == permissions_of(Role.SENIOR_ANALYST)
    assert full.token_kind == "api"

    issued = identity.sessions.create_api_token(ADMIN, "oli", "cases:read cases:assign")
    assert issued.token.startswith("frp_")
    scoped = identity.sessions.authenticate(issued.token)
    assert scoped.permissions == {Permission.CASES_READ, Permission.CASES_ASSIGN}
    scoped.require(Permission.CASES_READ)
    assert full.can(Permission.CASES_WORK) and not scoped.can(Permission.CASES_WORK)
    with pytest.raises(PermissionDeniedError, match=r"oli \(senior-analyst\).*cases:work"):
        scoped.require(Permission.CASES_WORK)

    identity.accounts.set_role(ADMIN, "oli", Role.ANALYST)  # loses cases:assign
    capped = identity.sessions.authenticate(issued.token)
    assert capped.role is Role.ANALYST and capped.permissions == {Permission.CASES_READ}


def test_a_scope_outside_the_role_is_refused(identity: Identity) -> None:
    identity.accounts.create(ADMIN, "pam", Role.ANALYST, None, mfa_required=False)
    with pytest.raises(ValueError, match=r"pam \(analyst\) does not have users:manage"):
        identity.sessions.create_api_token(ADMIN, "pam", "cases:read users:manage")
    with pytest.raises(ValueError, match="scopes are cases:read"):
        identity.sessions.create_api_token(ADMIN, "pam", "cases:everything")
    with pytest.raises(UnknownUserError):
        identity.sessions.create_api_token(ADMIN, "nobody", "cases:read")
    with identity.accounts.engine.connect() as connection:
        count = connection.execute(
            sa.select(sa.func.count())
            .select_from(TOKENS.join(USERS))
            .where(USERS.c.username == "pam")
        )
        assert count.scalar() == 0


def test_token_lifetime_is_capped(identity: Identity, clock: Clock) -> None:
    identity.accounts.create(ADMIN, "quin", Role.ANALYST, None, mfa_required=False)
    longest = identity.sessions.create_api_token(ADMIN, "quin", ttl_days=90)
    assert longest.expires_at == clock() + dt.timedelta(days=90)
    default = identity.sessions.create_api_token(ADMIN, "quin")
    assert default.expires_at == longest.expires_at
    for days in (91, 0, -1):
        with pytest.raises(ValueError, match="a token lives 1 to 90 days"):
            identity.sessions.create_api_token(ADMIN, "quin", ttl_days=days)


def test_tokens_are_stored_only_as_sha256(identity: Identity, engine: Engine, clock: Clock) -> None:
    rex = enrol(identity, "rex")
    session = sign_in(identity, rex, clock)
    api = identity.sessions.create_api_token(ADMIN, "rex").token
    stored = dump(engine)
    for token in (session, api):
        digest = hashlib.sha256(token.encode()).hexdigest()
        assert digest in stored  # the dump holds what is stored: the hash is found ...
        assert token not in stored and token.split("_", 1)[1] not in stored  # ... not the token


def test_concurrent_logins_with_one_code_open_one_session(identity: Identity, clock: Clock) -> None:
    sam = enrol(identity, "sam")
    seen, attempts = code(sam, clock), 8
    start = threading.Barrier(attempts)
    outcomes: list[str] = []

    def attempt() -> None:
        start.wait()
        try:
            identity.sessions.login("sam", PASSWORD, seen)
            outcomes.append("session")
        except LoginError:
            outcomes.append("refused")
        except BaseException as error:  # reported below, in the test's thread
            outcomes.append(repr(error))

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * (attempts - 1) + ["session"]
