"""What identity operations refuse, each with a message a person can act on."""

from __future__ import annotations

import datetime as dt


class IdentityError(RuntimeError):
    """Base of the identity errors."""


class UnknownUserError(IdentityError):
    """No user of that name."""


class UserExistsError(IdentityError):
    """A user of that name already exists."""


class LoginError(IdentityError):
    """Wrong username, password or code (deliberately not saying which)."""


class AccountLockedError(LoginError):
    """Too many failed logins: the account waits until ``until``."""

    def __init__(self, until: dt.datetime) -> None:
        super().__init__(f"the account is locked until {until:%Y-%m-%d %H:%M} UTC")
        self.until = until


class AuthenticationError(IdentityError):
    """A session or API token that is unknown, expired, revoked or of a disabled user."""


class PermissionDeniedError(IdentityError):
    """Authenticated, but the role (or the token's scopes) does not allow it."""
