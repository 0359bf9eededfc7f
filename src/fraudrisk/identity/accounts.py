"""User accounts: create, list, disable, change role, reset MFA (each audited).

Creating a user or resetting their MFA returns the TOTP provisioning URI and fresh recovery
codes **once**; only the sealed seed and the codes' hashes are stored. A person vouched for by
an identity provider (:class:`ExternalIdentity`) is provisioned just in time: no password, no
seed (the provider does MFA), found again by the provider's issuer and subject.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fraudrisk.identity import audit, hashing, totp
from fraudrisk.identity.audit import Actor
from fraudrisk.identity.errors import UnknownUserError, UserExistsError
from fraudrisk.identity.roles import Role, permissions_of
from fraudrisk.identity.sealing import Sealer
from fraudrisk.identity.tables import RECOVERY_CODES, TOKENS, USERS
from fraudrisk.io.database import inserted_id, utcnow

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class Enrolment:
    """What a person needs once to set up their second factor (never stored in clear)."""

    username: str
    provisioning_uri: str
    recovery_codes: list[str]


@dataclass(frozen=True)
class User:
    """A user as listed (no secret)."""

    id: int
    username: str
    display_name: str
    role: Role
    source: str
    mfa_enrolled: bool
    disabled: bool
    locked_until: dt.datetime | None
    created_at: dt.datetime


@dataclass(frozen=True)
class ExternalIdentity:
    """A person as an identity provider vouches for them (OIDC: a verified ID token).

    ``via`` names the provider kind (the ``source`` of the users it provisions and the audit
    actions' prefix); ``evidence`` says why they get their role (no secret: it is audited).
    """

    issuer: str
    subject: str
    username: str
    role: Role
    display_name: str = ""
    via: str = "oidc"
    evidence: dict[str, str] = field(default_factory=dict, hash=False)


def _user(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=Role(row.role),
        source=row.source,
        mfa_enrolled=row.totp_secret is not None,
        disabled=row.disabled,
        locked_until=row.locked_until,
        created_at=row.created_at,
    )


class Accounts:
    """The user accounts of one database."""

    def __init__(self, engine: Engine, sealer: Sealer, issuer: str, clock: Clock = utcnow):
        self.engine, self.sealer, self.issuer, self.clock = engine, sealer, issuer, clock

    def create(
        self,
        actor: Actor,
        username: str,
        role: Role | str,
        password: str | None,
        *,
        display_name: str = "",
        source: str = "local",
        mfa_required: bool = True,
    ) -> Enrolment:
        """Create a user; returns their TOTP enrolment (shown once).

        Raises:
            UserExistsError: If the username is taken.
            ValueError: For an unknown role or a too short password.
        """
        permissions_of(role)  # validates the role
        password_hash = hashing.hash_password(password) if password is not None else None
        now = self.clock()
        row = {
            "username": username,
            "display_name": display_name or username,
            "role": Role(role).value,
            "source": source,
            "password_hash": password_hash,
            "mfa_required": mfa_required,
            "disabled": False,
            "failed_logins": 0,
            "created_at": now,
            "updated_at": now,
        }
        taken = UserExistsError(f"a user named {username!r} exists already")
        try:
            with self.engine.begin() as connection:
                if self._find(connection, username) is not None:
                    raise taken
                user_id = inserted_id(connection.execute(USERS.insert().values(**row)))
                enrolment = self._enrol(connection, user_id, username)
                change = {"role": row["role"], "source": source, "mfa_required": mfa_required}
                audit.record(connection, actor, "user.create", "user", username, change)
        except sa.exc.IntegrityError as error:  # created meanwhile by a concurrent call
            raise taken from error
        return enrolment

    def _enrol(self, connection: Connection, user_id: int, username: str) -> Enrolment:
        secret = totp.new_secret()
        codes = hashing.new_recovery_codes()
        connection.execute(
            USERS.update()
            .where(USERS.c.id == user_id)
            .values(totp_secret=self.sealer.seal(secret), totp_last_step=None)
        )
        connection.execute(RECOVERY_CODES.delete().where(RECOVERY_CODES.c.user_id == user_id))
        connection.execute(
            RECOVERY_CODES.insert(),
            [{"user_id": user_id, "code_hash": hashing.token_hash(c)} for c in codes],
        )
        uri = totp.provisioning_uri(secret, username, self.issuer)
        return Enrolment(username, uri, codes)

    def _find(self, connection: Connection, username: str) -> Any:
        return connection.execute(sa.select(USERS).where(USERS.c.username == username)).first()

    def _require(self, connection: Connection, username: str) -> Any:
        row = self._find(connection, username)
        if row is None:
            raise UnknownUserError(f"no user named {username!r} (see `fraudrisk users list`)")
        return row

    def get(self, username: str) -> User:
        """One user.

        Raises:
            UnknownUserError: If there is none of that name.
        """
        with self.engine.connect() as connection:
            return _user(self._require(connection, username))

    def list(self) -> list[User]:
        """Every user, by username."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(USERS).order_by(USERS.c.username))
            return [_user(row) for row in rows]

    def _change(self, actor: Actor, username: str, action: str, **values: Any) -> Any:
        with self.engine.begin() as connection:
            row = self._require(connection, username)
            connection.execute(
                USERS.update().where(USERS.c.id == row.id).values(**values, updated_at=self.clock())
            )
            shown = {k: v for k, v in values.items() if k in ("role", "disabled")}
            audit.record(connection, actor, action, "user", username, shown)
            return row

    def disable(self, actor: Actor, username: str) -> None:
        """Disable a user: every session and API token of theirs stops working at once."""
        row = self._change(actor, username, "user.disable", disabled=True)
        self._revoke_all(row.id)

    def enable(self, actor: Actor, username: str) -> None:
        """Enable a disabled user again (old sessions stay revoked)."""
        self._change(actor, username, "user.enable", disabled=False, failed_logins=0)

    def set_role(self, actor: Actor, username: str, role: Role | str) -> None:
        """Change a user's role (tokens keep their scopes, capped by the new role)."""
        permissions_of(role)
        self._change(actor, username, "user.role", role=Role(role).value)

    def unlock(self, actor: Actor, username: str) -> None:
        """Lift a lockout before it expires."""
        self._change(actor, username, "user.unlock", failed_logins=0, locked_until=None)

    def reset_mfa(self, actor: Actor, username: str) -> Enrolment:
        """A new TOTP seed and recovery codes; the old ones and every session stop working."""
        with self.engine.begin() as connection:
            row = self._require(connection, username)
            enrolment = self._enrol(connection, row.id, username)
            audit.record(connection, actor, "user.reset-mfa", "user", username)
        self._revoke_all(row.id, kinds=("session",))
        return enrolment

    def _revoke_all(self, user_id: int, kinds: tuple[str, ...] = ("session", "api")) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                TOKENS.update()
                .where(TOKENS.c.user_id == user_id, TOKENS.c.kind.in_(kinds))
                .where(TOKENS.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )


def find_external(connection: Connection, person: ExternalIdentity) -> Any:
    """The user the provider's issuer and subject name, locked for this transaction (or None)."""
    return connection.execute(
        sa.select(USERS)
        .where(USERS.c.external_issuer == person.issuer)
        .where(USERS.c.external_subject == person.subject)
        .with_for_update()
    ).first()


def username_taken(connection: Connection, username: str, user_id: int | None = None) -> bool:
    """Whether another user than ``user_id`` holds the username."""
    query = sa.select(USERS.c.id).where(USERS.c.username == username)
    if user_id is not None:
        query = query.where(USERS.c.id != user_id)
    return connection.execute(query).first() is not None


def provision_external(
    connection: Connection, person: ExternalIdentity, actor: Actor, now: dt.datetime
) -> int:
    """Create the user of a first external login (no password, no seed); returns its id."""
    row = {
        "username": person.username,
        "display_name": (person.display_name or person.username)[:128],
        "role": person.role.value,
        "source": person.via,
        "password_hash": None,
        "mfa_required": False,  # the identity provider's
        "disabled": False,
        "failed_logins": 0,
        "created_at": now,
        "updated_at": now,
        "external_issuer": person.issuer,
        "external_subject": person.subject,
    }
    user_id = inserted_id(connection.execute(USERS.insert().values(**row)))
    change = {"role": row["role"], "source": person.via, "issuer": person.issuer}
    audit.record(connection, actor, "user.provision", "user", person.username, change)
    return user_id


def sync_external(
    connection: Connection, user: Any, person: ExternalIdentity, actor: Actor, now: dt.datetime
) -> None:
    """Bring the user up to date with what the provider says now (username, name, role)."""
    wanted = {
        "username": person.username,
        "display_name": (person.display_name or person.username)[:128],
        "role": person.role.value,
    }
    changed = {k: v for k, v in wanted.items() if getattr(user, k) != v}
    if not changed:
        return
    connection.execute(
        USERS.update().where(USERS.c.id == user.id).values(**changed, updated_at=now)
    )
    shown = {k: [getattr(user, k), v] for k, v in changed.items()}  # [before, after]
    audit.record(connection, actor, f"user.{person.via}-sync", "user", person.username, shown)
