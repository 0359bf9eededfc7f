"""Signing in (username, password, TOTP code), signing out, and signing out everywhere.

The sign-in calls the identity service's login — the one ``POST /v1/auth/login`` calls — and a
failure says only that the username, password or code is wrong, never which; a locked
account says until when. Messages shown after a redirect are chosen from a fixed list by key,
never echoed from the URL.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Form, Request, Response
from fastapi.responses import RedirectResponse

from fraudrisk.cases.api import CaseServices
from fraudrisk.cases.http import client_address
from fraudrisk.dashboard import security
from fraudrisk.dashboard.rendering import render
from fraudrisk.dashboard.session import (
    LOGIN_NONCE_COOKIE,
    Acting,
    CookiePolicy,
    NotSignedInError,
    current_viewer,
)
from fraudrisk.identity.errors import AccountLockedError, LoginError

NOTICES = {
    "signed-out": "You have signed out.",
    "signed-out-everywhere": "You have signed out on every device.",
    "expired": "Your session has ended: sign in again.",
}
WRONG = "Sign-in failed: the username, password or code is wrong."


def safe_next(target: str) -> str:
    """Where to go after signing in: a path of this site only (never another host)."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and "\n" not in target:
        return target
    return "/"


def install(app: FastAPI, services: CaseServices, cookies: CookiePolicy) -> None:
    """The sign-in page and the sign-out actions."""

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str = "/", notice: str = "") -> Response:
        try:
            current_viewer(request)
            return RedirectResponse(safe_next(next), status_code=303)
        except NotSignedInError:
            pass
        return _login_form(request, cookies, safe_next(next), NOTICES.get(notice, ""), "", 200)

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)] = "",
        password: Annotated[str, Form(max_length=1024)] = "",
        code: Annotated[str, Form(max_length=32)] = "",
        csrf_token: Annotated[str, Form(max_length=128)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/",
    ) -> Response:
        security.check(csrf_token, request.cookies.get(LOGIN_NONCE_COOKIE, ""))
        try:
            issued = services.identity.sessions.login(
                username, password, code.strip(), client_address(request)
            )
        except AccountLockedError as locked:
            message = f"Too many failed sign-ins: {locked}. Try again later or ask an admin."
            return _login_form(request, cookies, safe_next(next), "", message, 423, username)
        except LoginError:
            return _login_form(request, cookies, safe_next(next), "", WRONG, 401, username)
        response = RedirectResponse(safe_next(next), status_code=303)
        cookies.set(response, issued.token, issued.expires_at)
        response.delete_cookie(LOGIN_NONCE_COOKIE, path="/login")
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(viewer: Acting) -> Response:
        services.identity.sessions.logout(viewer.token)
        return _signed_out(cookies, "signed-out")

    @app.post("/logout-everywhere", include_in_schema=False)
    def logout_everywhere(viewer: Acting) -> Response:
        person = viewer.principal
        services.identity.sessions.logout_everywhere(person.actor, person.username)
        return _signed_out(cookies, "signed-out-everywhere")


def _signed_out(cookies: CookiePolicy, notice: str) -> Response:
    response = RedirectResponse(f"/login?notice={notice}", status_code=303)
    cookies.clear(response)
    return response


def _login_form(
    request: Request,
    cookies: CookiePolicy,
    next_path: str,
    notice: str,
    error: str,
    status: int,
    username: str = "",
) -> Response:
    """The sign-in page with a fresh double-submit value in its form and its cookie."""
    nonce = security.new_login_nonce()
    response = render(
        request,
        "login.html",
        None,
        status,
        login_nonce=nonce,
        next_path=next_path,
        notice=notice,
        error=error,
        username=username,
    )
    cookies.set_login_nonce(response, nonce)
    return response
