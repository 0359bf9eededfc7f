"""Logging in and proving who you are: sessions and personal API tokens.

A login takes the password and, when the user's MFA is required, a TOTP code (each code once)
or an unused recovery code. After ``max_failed_logins`` failures in a row the next failure
locks the account for ``lockout_minutes``; a locked account refuses even the right password.
A session or token is an opaque random string; the database holds only its SHA-256, its
expiry and revocation, and every use re-reads the user, so disabling a user, changing their
role or revoking a token takes effect on the next request.

A person an identity provider vouches for (OIDC, :mod:`fraudrisk.identity.oidc`) gets the same
kind of session from :meth:`Sessions.login_external`: their user is provisioned or brought up
to date in the same transaction, and a disabled user stays refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fraudrisk.config import IdentitySettings
from fraudrisk.identity import accounts, audit, hashing, totp
from fraudrisk.identity.accounts import Clock, ExternalIdentity
from fraudrisk.identity.audit import Actor
from fraudrisk.identity.errors import (
    AccountLockedError,
    AuthenticationError,
    LoginError,
    PermissionDeniedError,
    UnknownUserError,
)
from fraudrisk.identity.principal import Principal
from fraudrisk.identity.roles import Role, parse_scopes, permissions_of
from fraudrisk.identity.sealing import Sealer
from fraudrisk.identity.tables import RECOVERY_CODES, TOKENS, USERS
from fraudrisk.io.database import inserted_id, lock_for_write, utcnow

SESSION, API_TOKEN = "session", "api"
_WRONG = "wrong username, password or code"
#: A token's ``last_used_at`` is written at most this often (not on every request).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
_PG_PROVISION_LOCK = 7_310_002  # advisory lock: two first logins of one person make one user


class ExternalLoginRefusedError(PermissionDeniedError):
    """The identity provider vouched for the person, but the platform refuses them (403)."""


@dataclass(frozen=True)
class IssuedToken:
    """A session or API token as issued: the secret is shown this once."""

    token: str
    token_id: int
    expires_at: dt.datetime


class Sessions:
    """Logins, sessions and personal API tokens of one database."""

    def __init__(
        self, engine: Engine, settings: IdentitySettings, sealer: Sealer, clock: Clock = utcnow
    ) -> None:
        self.engine, self.settings, self.sealer, self.clock = engine, settings, sealer, clock

    def login(self, username: str, password: str, code: str = "", source: str = "") -> IssuedToken:
        """Check the credentials and open a session.

        Raises:
            AccountLockedError: While the account is locked (even with the right password).
            LoginError: For a wrong or disabled username, password or code.
        """
        now = self.clock()
        with self.engine.begin() as connection:
            # The code's step is checked and spent under the user's row lock, in one
            # transaction: concurrent logins with one code open one session.
            lock_for_write(connection)  # SQLite has no FOR UPDATE: its write lock instead
            user = connection.execute(
                sa.select(USERS).where(USERS.c.username == username).with_for_update()
            ).first()
            if user is None or user.disabled:
                hashing.verify_password(None, password)
                raise LoginError(_WRONG)
            if user.locked_until is not None and user.locked_until > now:
                raise AccountLockedError(user.locked_until)
            ok = hashing.verify_password(user.password_hash, password)
            step = self._second_factor(connection, user, code, now) if ok else None
            if ok and step is not False:
                values: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
                if isinstance(step, int) and not isinstance(step, bool):
                    values["totp_last_step"] = step
                connection.execute(USERS.update().where(USERS.c.id == user.id).values(**values))
                hours = dt.timedelta(hours=self.settings.session_hours)
                issued = self._issue(connection, user.id, SESSION, "login", "", now + hours, source)
                audit.record(connection, Actor(username, source), "login", "user", username)
                return issued
            self._failed(connection, user, now, source)
        raise self._failure(username, now)

    def login_external(self, person: ExternalIdentity, source: str = "") -> IssuedToken:
        """Open a session for a person vouched for by an identity provider.

        Their user is found by the provider's issuer and subject, made on the first login and
        brought up to date (username, display name, role) on every one. Success and refusal
        are audited (``login.<via>``, ``login.<via>.refused``).

        Raises:
            ExternalLoginRefusedError: If the user is disabled, or their username belongs to
                another account (a local one, or another provider's).
        """
        now = self.clock()
        actor = Actor(person.username, source)
        with self.engine.begin() as connection:
            _serialise_provisioning(connection)
            user = accounts.find_external(connection, person)
            refusal = _external_refusal(connection, user, person)
            if refusal is None:
                if user is None:
                    user_id = accounts.provision_external(connection, person, actor, now)
                else:
                    user_id = user.id
                    accounts.sync_external(connection, user, person, actor, now)
                hours = dt.timedelta(hours=self.settings.session_hours)
                issued = self._issue(
                    connection, user_id, SESSION, person.via, "", now + hours, source
                )
                change = {"issuer": person.issuer, "role": person.role.value, **person.evidence}
                audit.record(
                    connection, actor, f"login.{person.via}", "user", person.username, change
                )
                return issued
            self._audit_refusal(connection, actor, person.via, refusal, issuer=person.issuer)
        raise ExternalLoginRefusedError(refusal)

    def refuse_external(
        self, username: str, via: str, reason: str, source: str = "", **details: str
    ) -> None:
        """Audit an external login refused before any user was involved (its own transaction).

        ``username`` is who the provider named, or ``"unknown"``; ``details`` hold no secret.
        """
        with self.engine.begin() as connection:
            self._audit_refusal(connection, Actor(username, source), via, reason, **details)

    def _audit_refusal(
        self, connection: Connection, actor: Actor, via: str, reason: str, **details: str
    ) -> None:
        change = {"reason": reason, **details}
        audit.record(connection, actor, f"login.{via}.refused", "user", actor.username, change)

    def _second_factor(self, connection: Connection, user: Any, code: str, now: dt.datetime) -> Any:
        """The TOTP step accepted, ``True`` (recovery code or no MFA), or ``False``."""
        if not (user.mfa_required and self.settings.mfa_required):
            return True
        if user.totp_secret is None:
            return False
        if "-" in code:
            return self._use_recovery_code(connection, user.id, code, now)
        step = totp.accepted_step(
            self.sealer.open(user.totp_secret), code, now, user.totp_last_step
        )
        return False if step is None else step

    def _use_recovery_code(self, connection: Connection, user_id: int, code: str, now: Any) -> bool:
        used = connection.execute(
            RECOVERY_CODES.update()
            .where(RECOVERY_CODES.c.user_id == user_id, RECOVERY_CODES.c.used_at.is_(None))
            .where(RECOVERY_CODES.c.code_hash == hashing.token_hash(code.strip().lower()))
            .values(used_at=now)
        )
        return used.rowcount == 1

    def _failed(self, connection: Connection, user: Any, now: dt.datetime, source: str) -> None:
        failures = user.failed_logins + 1
        values: dict[str, Any] = {"failed_logins": failures}
        if failures > self.settings.max_failed_logins:
            values["locked_until"] = now + dt.timedelta(minutes=self.settings.lockout_minutes)
            values["failed_logins"] = 0
        connection.execute(USERS.update().where(USERS.c.id == user.id).values(**values))
        action = "login.locked" if "locked_until" in values else "login.failed"
        audit.record(connection, Actor(user.username, source), action, "user", user.username)

    def _failure(self, username: str, now: dt.datetime) -> LoginError:
        with self.engine.connect() as connection:
            until = connection.execute(
                sa.select(USERS.c.locked_until).where(USERS.c.username == username)
            ).scalar()
        return (
            AccountLockedError(until) if until is not None and until > now else LoginError(_WRONG)
        )

    def _issue(
        self,
        connection: Connection,
        user_id: int,
        kind: str,
        name: str,
        scopes: str,
        expires_at: dt.datetime,
        source: str,
    ) -> IssuedToken:
        prefix = hashing.SESSION_PREFIX if kind == SESSION else hashing.API_TOKEN_PREFIX
        token = hashing.new_token(prefix)
        row = {
            "user_id": user_id,
            "kind": kind,
            "token_hash": hashing.token_hash(token),
            "name": name,
            "scopes": scopes,
            "source": source[:64],
            "created_at": self.clock(),
            "expires_at": expires_at,
        }
        token_id = inserted_id(connection.execute(TOKENS.insert().values(**row)))
        return IssuedToken(token, token_id, expires_at)

    def authenticate(self, token: str, source: str = "") -> Principal:
        """The person a session or API token belongs to, now.

        Raises:
            AuthenticationError: If the token is unknown, expired, revoked or its user disabled.
        """
        now = self.clock()
        query = (
            sa.select(TOKENS, USERS.c.username, USERS.c.role, USERS.c.disabled)
            .join(USERS, USERS.c.id == TOKENS.c.user_id)
            .where(TOKENS.c.token_hash == hashing.token_hash(token))
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None or row.revoked_at is not None or row.expires_at <= now or row.disabled:
            raise AuthenticationError("not signed in: the session or token is not valid")
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            with self.engine.begin() as connection:
                connection.execute(
                    TOKENS.update().where(TOKENS.c.id == row.id).values(last_used_at=now)
                )
        permissions = permissions_of(row.role)
        if row.scopes:
            permissions = permissions & parse_scopes(row.scopes)
        return Principal(
            row.user_id, row.username, Role(row.role), permissions, row.id, row.kind, source
        )

    def logout(self, token: str) -> None:
        """End the session (or revoke the token) presented."""
        principal = self.authenticate(token)
        self.revoke(principal.actor, principal.username, principal.token_id)

    def revoke(self, actor: Actor, username: str, token_id: int) -> None:
        """Revoke one session or token of a user.

        Raises:
            UnknownUserError: If the user has no such unrevoked token (or no such user).
        """
        with self.engine.begin() as connection:
            user_id = self._user_id(connection, username)
            revoked = connection.execute(
                TOKENS.update()
                .where(TOKENS.c.id == token_id, TOKENS.c.user_id == user_id)
                .where(TOKENS.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
            if not revoked.rowcount:
                raise UnknownUserError(f"{username} has no unrevoked token {token_id}")
            audit.record(connection, actor, "token.revoke", "token", token_id, {"user": username})

    def logout_everywhere(self, actor: Actor, username: str) -> int:
        """Revoke every session of a user (sign-out everywhere); returns how many."""
        with self.engine.begin() as connection:
            user_id = self._user_id(connection, username)
            result = connection.execute(
                TOKENS.update()
                .where(TOKENS.c.user_id == user_id, TOKENS.c.kind == SESSION)
                .where(TOKENS.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
            audit.record(connection, actor, "logout.everywhere", "user", username)
            return int(result.rowcount)

    def create_api_token(
        self,
        actor: Actor,
        username: str,
        scopes: str = "",
        ttl_days: int | None = None,
        name: str = "api token",
    ) -> IssuedToken:
        """A personal API token for scripts, scoped and expiring.

        Raises:
            ValueError: For an unknown scope, one the user's role lacks, or a too long life.
        """
        days = self.settings.token_max_days if ttl_days is None else ttl_days
        if not 0 < days <= self.settings.token_max_days:
            raise ValueError(f"a token lives 1 to {self.settings.token_max_days} days")
        with self.engine.begin() as connection:
            user = connection.execute(sa.select(USERS).where(USERS.c.username == username)).first()
            if user is None:
                raise UnknownUserError(f"no user named {username!r} (see `fraudrisk users list`)")
            requested = parse_scopes(scopes)
            extra = requested - permissions_of(user.role)
            if extra:
                names = ", ".join(sorted(p.value for p in extra))
                raise ValueError(f"{username} ({user.role}) does not have {names}")
            expires = self.clock() + dt.timedelta(days=days)
            joined = " ".join(sorted(p.value for p in requested))
            issued = self._issue(
                connection, user.id, API_TOKEN, name, joined, expires, actor.source
            )
            change = {"user": username, "scopes": joined or "all of the role", "days": days}
            audit.record(connection, actor, "token.create", "token", issued.token_id, change)
        return issued

    def tokens(self, username: str | None = None, active_only: bool = True) -> list[TokenInfo]:
        """Sessions and API tokens (of one user), newest first — never their secrets."""
        query = (
            sa.select(TOKENS, USERS.c.username)
            .join(USERS, USERS.c.id == TOKENS.c.user_id)
            .order_by(TOKENS.c.id.desc())
        )
        if username is not None:
            query = query.where(USERS.c.username == username)
        if active_only:
            query = query.where(TOKENS.c.revoked_at.is_(None), TOKENS.c.expires_at > self.clock())
        with self.engine.connect() as connection:
            return [TokenInfo.of_row(row) for row in connection.execute(query)]

    def _user_id(self, connection: Connection, username: str) -> int:
        user_id = connection.execute(
            sa.select(USERS.c.id).where(USERS.c.username == username)
        ).scalar()
        if user_id is None:
            raise UnknownUserError(f"no user named {username!r}")
        return int(user_id)


@dataclass(frozen=True)
class TokenInfo:
    """A session or API token as listed: who, what for, when (never the token or its hash)."""

    id: int
    username: str
    kind: str
    name: str
    scopes: str
    created_at: dt.datetime
    expires_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def of_row(cls, row: Any) -> TokenInfo:
        """The listing of a ``tokens`` row joined with its user."""
        return cls(
            row.id,
            row.username,
            row.kind,
            row.name,
            row.scopes,
            row.created_at,
            row.expires_at,
            row.last_used_at,
            row.revoked_at,
        )


def _serialise_provisioning(connection: Connection) -> None:
    """Let one external login at a time find-or-create its user (no duplicate on a race)."""
    lock_for_write(connection, _PG_PROVISION_LOCK)


def _external_refusal(connection: Connection, user: Any, person: ExternalIdentity) -> str | None:
    """Why the platform refuses an external login, or ``None``."""
    if user is not None and user.disabled:
        return f"the account {user.username!r} is disabled: ask an admin"
    renamed = user is None or user.username != person.username
    held_by = None if user is None else user.id
    if renamed and accounts.username_taken(connection, person.username, held_by):
        return (
            f"the username {person.username!r} belongs to another account: ask an admin "
            "(a local user and a provider's cannot share a name)"
        )
    return None
