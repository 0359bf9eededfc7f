"""User accounts on SQLite: enrolment shown once, secrets stored only hashed or sealed."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import Engine
from tests.unit.identity.test_sessions import (
    ADMIN,
    PASSWORD,
    SEALER,
    Clock,
    code,
    database,
    dump,
    enrol,
    fast_argon2,
    make_identity,
    secret_of,
    sign_in,
)

from fraudrisk.identity import hashing, totp
from fraudrisk.identity.errors import (
    AccountLockedError,
    AuthenticationError,
    LoginError,
    UnknownUserError,
    UserExistsError,
)
from fraudrisk.identity.roles import Role
from fraudrisk.identity.sealing import Sealer, SealError
from fraudrisk.identity.service import Identity
from fraudrisk.identity.tables import RECOVERY_CODES, USERS

CODE = re.compile(r"^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$")


@pytest.fixture(scope="module", autouse=True)
def _fast_argon2() -> Iterator[None]:
    with fast_argon2():
        yield


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = database(tmp_path_factory.mktemp("accounts"))
    yield engine
    engine.dispose()


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def identity(engine: Engine, clock: Clock) -> Identity:
    return make_identity(engine, clock)


def user_row(engine: Engine, username: str) -> sa.Row[tuple[object, ...]]:
    with engine.connect() as connection:
        row = connection.execute(sa.select(USERS).where(USERS.c.username == username)).first()
    assert row is not None
    return row


def test_create_returns_the_enrolment_once(identity: Identity) -> None:
    enrolment = identity.accounts.create(
        ADMIN, "ana", "senior-analyst", PASSWORD, display_name="Ana A."
    )
    assert enrolment.username == "ana"
    assert enrolment.provisioning_uri.startswith("otpauth://totp/fraudrisk:ana?")
    assert "issuer=fraudrisk" in enrolment.provisioning_uri
    assert len(secret_of(enrolment.provisioning_uri)) == 32
    assert len(set(enrolment.recovery_codes)) == 10
    assert all(CODE.match(c) for c in enrolment.recovery_codes)

    user = identity.accounts.get("ana")
    assert (user.username, user.display_name, user.role, user.source) == (
        "ana",
        "Ana A.",
        Role.SENIOR_ANALYST,
        "local",
    )
    assert user.mfa_enrolled and not user.disabled and user.locked_until is None
    assert "ana" in [u.username for u in identity.accounts.list()]


def test_a_taken_username_an_unknown_role_or_a_short_password_are_refused(
    identity: Identity,
) -> None:
    identity.accounts.create(ADMIN, "bo", Role.ANALYST, PASSWORD)
    before = len(identity.accounts.list())
    with pytest.raises(UserExistsError, match="'bo' exists already"):
        identity.accounts.create(ADMIN, "bo", Role.ADMIN, PASSWORD)
    with pytest.raises(ValueError, match="unknown role 'boss': one of analyst, senior-analyst"):
        identity.accounts.create(ADMIN, "cy", "boss", PASSWORD)
    with pytest.raises(ValueError, match="at least 12 characters"):
        identity.accounts.create(ADMIN, "cy", Role.ANALYST, "short")
    assert len(identity.accounts.list()) == before
    assert identity.accounts.get("bo").role is Role.ANALYST
    with pytest.raises(UnknownUserError, match="no user named 'cy'"):
        identity.accounts.get("cy")


def test_passwords_are_stored_as_argon2id(identity: Identity, engine: Engine) -> None:
    identity.accounts.create(ADMIN, "dee", Role.ANALYST, PASSWORD)
    stored = user_row(engine, "dee").password_hash
    assert stored.startswith("$argon2id$")
    assert hashing.verify_password(stored, PASSWORD)
    assert not hashing.verify_password(stored, PASSWORD + "!")
    assert PASSWORD not in dump(engine)


def test_totp_seeds_are_stored_sealed(identity: Identity, engine: Engine) -> None:
    enrolment = identity.accounts.create(ADMIN, "eve", Role.ANALYST, PASSWORD)
    secret = secret_of(enrolment.provisioning_uri)
    sealed = user_row(engine, "eve").totp_secret
    assert secret not in sealed and secret.lower() not in sealed.lower()
    assert secret not in dump(engine)
    assert SEALER.open(sealed) == secret  # it is that seed, sealed with the platform's key
    with pytest.raises(SealError):
        Sealer(Fernet.generate_key()).open(sealed)


def test_recovery_codes_are_stored_as_sha256(identity: Identity, engine: Engine) -> None:
    enrolment = identity.accounts.create(ADMIN, "fay", Role.ANALYST, PASSWORD)
    user_id = user_row(engine, "fay").id
    with engine.connect() as connection:
        stored = set(
            connection.execute(
                sa.select(RECOVERY_CODES.c.code_hash).where(RECOVERY_CODES.c.user_id == user_id)
            ).scalars()
        )
    assert stored == {hashing.token_hash(c) for c in enrolment.recovery_codes}
    everything = dump(engine)
    assert not any(c in everything for c in enrolment.recovery_codes)


def test_set_role_changes_it_and_refuses_an_unknown_one(identity: Identity) -> None:
    identity.accounts.create(ADMIN, "gus", Role.ANALYST, None, mfa_required=False)
    identity.accounts.set_role(ADMIN, "gus", "risk-manager")
    assert identity.accounts.get("gus").role is Role.RISK_MANAGER
    with pytest.raises(ValueError, match="unknown role"):
        identity.accounts.set_role(ADMIN, "gus", "superuser")
    with pytest.raises(UnknownUserError):
        identity.accounts.set_role(ADMIN, "nobody", "analyst")
    assert identity.accounts.get("gus").role is Role.RISK_MANAGER


def test_reset_mfa_replaces_the_seed_and_codes_and_ends_sessions(
    identity: Identity, clock: Clock
) -> None:
    hal = enrol(identity, "hal")
    session = sign_in(identity, hal, clock)
    token = identity.sessions.create_api_token(ADMIN, "hal").token
    enrolment = identity.accounts.reset_mfa(ADMIN, "hal")
    new_secret = secret_of(enrolment.provisioning_uri)
    assert new_secret != hal.secret
    assert not set(enrolment.recovery_codes) & set(hal.recovery_codes)

    with pytest.raises(AuthenticationError):
        identity.sessions.authenticate(session)
    identity.sessions.authenticate(token)  # API tokens are not second-factor bound
    clock.advance(seconds=totp.STEP_SECONDS)
    with pytest.raises(LoginError):  # the old seed's code
        identity.sessions.login("hal", PASSWORD, code(hal, clock))
    with pytest.raises(LoginError):  # an old recovery code
        identity.sessions.login("hal", PASSWORD, hal.recovery_codes[0])
    identity.sessions.login("hal", PASSWORD, totp.code_at(new_secret, clock()))
    identity.sessions.login("hal", PASSWORD, enrolment.recovery_codes[0])


def test_unlock_lifts_a_lockout(identity: Identity, clock: Clock) -> None:
    ivy = enrol(identity, "ivy")
    with identity.accounts.engine.begin() as connection:
        connection.execute(
            USERS.update()
            .where(USERS.c.username == "ivy")
            .values(locked_until=clock.now.replace(hour=23))
        )
    assert identity.accounts.get("ivy").locked_until is not None
    with pytest.raises(AccountLockedError):
        sign_in(identity, ivy, clock)
    identity.accounts.unlock(ADMIN, "ivy")
    assert identity.accounts.get("ivy").locked_until is None
    sign_in(identity, ivy, clock)


def test_a_user_without_an_enrolled_second_factor_cannot_log_in(
    identity: Identity, engine: Engine
) -> None:
    identity.accounts.create(ADMIN, "jo", Role.ANALYST, PASSWORD)
    with engine.begin() as connection:
        connection.execute(USERS.update().where(USERS.c.username == "jo").values(totp_secret=None))
    assert not identity.accounts.get("jo").mfa_enrolled
    with pytest.raises(LoginError):
        identity.sessions.login("jo", PASSWORD, "123456")


def test_mfa_off_by_setting_logs_in_with_the_password(engine: Engine, clock: Clock) -> None:
    identity = make_identity(engine, clock, mfa_required=False)
    identity.accounts.create(ADMIN, "kim", Role.ANALYST, PASSWORD)
    identity.sessions.login("kim", PASSWORD)
    with pytest.raises(LoginError):
        identity.sessions.login("kim", "the wrong password")


def test_a_user_without_a_password_cannot_log_in(identity: Identity) -> None:
    identity.accounts.create(ADMIN, "lee", Role.ANALYST, None, source="sso", mfa_required=False)
    assert identity.accounts.get("lee").source == "sso"
    with pytest.raises(LoginError):
        identity.sessions.login("lee", "")
    with pytest.raises(LoginError):
        identity.sessions.login("lee", PASSWORD)


def test_a_concurrent_create_of_the_same_name_is_user_exists_not_a_database_error(
    identity: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity.accounts.create(ADMIN, "racer", Role.ANALYST, PASSWORD)
    # the race: the other call's user is not there yet when this one looks, then is
    monkeypatch.setattr(type(identity.accounts), "_find", lambda self, connection, name: None)
    with pytest.raises(UserExistsError, match="'racer' exists already"):
        identity.accounts.create(ADMIN, "racer", Role.ADMIN, PASSWORD)
    monkeypatch.undo()
    assert identity.accounts.get("racer").role is Role.ANALYST  # the first one stands
