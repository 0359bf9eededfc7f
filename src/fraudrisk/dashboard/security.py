"""What every response carries (CSP and the other security headers) and the CSRF checks.

The Content-Security-Policy allows scripts, styles, XHR and images of this origin only — no
``'unsafe-inline'``, no ``eval``: every script and style is a static file, and a page's data
(a chart's figures) travels in ``data-`` attributes. A state-changing request needs the CSRF
token of its session, in the ``X-CSRF-Token`` header (htmx sends it, ``static/app.js``) or the
``csrf_token`` form field. The token is an HMAC keyed by the session token, which the browser
keeps in an HttpOnly cookie: another site can neither read nor compute it. The sign-in form,
before any session, is a double submit: a random value in a cookie and in the form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from fraudrisk.identity.errors import PermissionDeniedError

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
HSTS = "max-age=31536000; includeSubDomains"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_PURPOSE = b"fraudrisk-dashboard-csrf-v1"


class CsrfError(PermissionDeniedError):
    """A state-changing request without the right CSRF token (a 403 page)."""


def install_headers(app: FastAPI, secure: bool) -> None:
    """Add the security headers to every response; pages are never cached."""

    async def add_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.middleware("http")(add_headers)


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session (the same for the session's whole life)."""
    return hmac.new(session_token.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def new_login_nonce() -> str:
    """A random value for the sign-in form's double submit."""
    return secrets.token_urlsafe(32)


async def presented_token(request: Request) -> str:
    """The CSRF token a request carries: the header, else the form field, else ``""``."""
    header = request.headers.get(CSRF_HEADER, "")
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD, "")
        return value if isinstance(value, str) else ""
    return ""


def check(presented: str, expected: str) -> None:
    """Refuse unless the two tokens are equal (in constant time).

    Raises:
        CsrfError: If they differ or either is empty.
    """
    if not presented or not expected or not hmac.compare_digest(presented, expected):
        raise CsrfError("the form has expired or did not come from this site: reload the page")
