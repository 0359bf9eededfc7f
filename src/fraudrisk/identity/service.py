"""The identity service of one database: accounts, sessions and the audit log together."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from fraudrisk.config import Settings
from fraudrisk.identity.accounts import Accounts, Clock
from fraudrisk.identity.audit import AuditLog
from fraudrisk.identity.sealing import Sealer
from fraudrisk.identity.sessions import Sessions
from fraudrisk.io.database import utcnow


@dataclass(frozen=True)
class Identity:
    """Users, logins and the audit log of the application database."""

    accounts: Accounts
    sessions: Sessions
    audit: AuditLog


def sealer_for(settings: Settings) -> Sealer:
    """The sealer of the configured key, or of the embedded key file."""
    key = settings.identity.secret_key.get_secret_value()
    return Sealer(key) if key else Sealer.from_key_file(settings.identity_key_file)


def identity_for(settings: Settings, engine: Engine, clock: Clock = utcnow) -> Identity:
    """The identity service over an open application database (see ``io.database``)."""
    sealer = sealer_for(settings)
    return Identity(
        Accounts(engine, sealer, settings.identity.totp_issuer, clock),
        Sessions(engine, settings.identity, sealer, clock),
        AuditLog(engine),
    )
