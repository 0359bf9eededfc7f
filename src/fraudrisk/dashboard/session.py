"""Who is looking: the session cookie, the signed-in person, and the check of each POST.

The cookie holds the identity service's opaque session token (the same kind as
``POST /v1/auth/login`` answers), ``HttpOnly``, ``SameSite=Strict`` and — unless plain HTTP on
loopback is asked for — ``Secure`` under the ``__Host-`` prefix. Every request re-reads the
person through :meth:`~fraudrisk.identity.sessions.Sessions.authenticate`, so a disabled user,
a changed role or a revoked session takes effect on the next click.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from fraudrisk.cases.api import CaseServices
from fraudrisk.cases.http import client_address
from fraudrisk.dashboard import security
from fraudrisk.identity.errors import AuthenticationError
from fraudrisk.identity.principal import Principal

LOGIN_NONCE_COOKIE = "fraudrisk_login"


class NotSignedInError(AuthenticationError):
    """No valid session cookie: the person is sent to the sign-in page."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in person of a request, their session token and its CSRF token."""

    principal: Principal
    token: str

    @property
    def csrf(self) -> str:
        """The CSRF token forms and htmx send back."""
        return security.csrf_token(self.token)


@dataclass(frozen=True)
class CookiePolicy:
    """How the session cookie is set: ``secure`` off only for plain HTTP on loopback."""

    secure: bool = True

    @property
    def name(self) -> str:
        """``__Host-`` (Secure, Path=/, no Domain) whenever the cookie is Secure."""
        return "__Host-fraudrisk_session" if self.secure else "fraudrisk_session"

    def set(self, response: Response, token: str, expires_at: dt.datetime) -> None:
        """Give the browser the session token."""
        expires = expires_at.replace(tzinfo=dt.UTC)
        response.set_cookie(
            self.name,
            token,
            expires=expires,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )

    def clear(self, response: Response) -> None:
        """Make the browser forget the session token."""
        response.delete_cookie(
            self.name, path="/", secure=self.secure, httponly=True, samesite="strict"
        )

    def set_login_nonce(self, response: Response, nonce: str) -> None:
        """The sign-in form's double-submit value (10 minutes)."""
        response.set_cookie(
            LOGIN_NONCE_COOKIE,
            nonce,
            max_age=600,
            path="/login",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )


def _services(request: Request) -> CaseServices:
    services: CaseServices = request.app.state.services
    return services


def current_viewer(request: Request) -> Viewer:
    """The signed-in person of the request.

    Raises:
        NotSignedInError: Without a valid session cookie.
    """
    policy: CookiePolicy = request.app.state.cookies
    token = request.cookies.get(policy.name, "")
    if not token:
        raise NotSignedInError("sign in first")
    try:
        principal = _services(request).identity.sessions.authenticate(
            token, source=client_address(request)
        )
    except AuthenticationError:
        raise NotSignedInError("your session has ended: sign in again") from None
    return Viewer(principal, token)


async def checked_viewer(request: Request) -> Viewer:
    """The signed-in person of a state-changing request, its CSRF token checked.

    Raises:
        NotSignedInError: Without a valid session cookie.
        CsrfError: Without the session's CSRF token.
    """
    viewer = current_viewer(request)
    security.check(await security.presented_token(request), viewer.csrf)
    return viewer


#: The person of a page (sent to sign in without a session).
Seen = Annotated[Viewer, Depends(current_viewer)]
#: The person of a POST, CSRF-checked.
Acting = Annotated[Viewer, Depends(checked_viewer)]
