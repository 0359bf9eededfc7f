"""User accounts: create, list, disable, change role, reset MFA (each audited).

Creating a user or resetting their MFA returns the TOTP provisioning URI and fresh recovery
codes **once**; only the sealed seed and the codes' hashes are stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
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
        with self.engine.begin() as connection:
            if self._find(connection, username) is not None:
                raise UserExistsError(f"a user named {username!r} exists already")
            user_id = inserted_id(connection.execute(USERS.insert().values(**row)))
            enrolment = self._enrol(connection, user_id, username)
            change = {"role": row["role"], "source": source, "mfa_required": mfa_required}
            audit.record(connection, actor, "user.create", "user", username, change)
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
