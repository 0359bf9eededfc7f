"""The dashboard app: its factory, static files, the error pages and the pages of no one area.

:func:`create_dashboard` takes the same :class:`~fraudrisk.cases.api.CaseServices` the case API
does and can stand alone (``fraudrisk dashboard serve``) or beside the API in one process.
Errors are pages: not signed in → the sign-in page (a 303, or ``HX-Redirect`` for htmx);
a role without the permission → 403; a case outside one's queues or an unknown page → 404;
a refused change (stale version, illegal move, a policy step out of order) → 409 naming what
happened; an author approving their own policy version → 403 (four eyes).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraudrisk.cases.api import CaseServices
from fraudrisk.cases.errors import CaseNotFoundError, VersionConflictError
from fraudrisk.cases.lifecycle import IllegalTransitionError
from fraudrisk.dashboard import (
    assets,
    auth_pages,
    case_pages,
    live_pages,
    policy_pages,
    security,
)
from fraudrisk.dashboard.nav import guard, links_for
from fraudrisk.dashboard.rendering import environment, render
from fraudrisk.dashboard.session import CookiePolicy, NotSignedInError, Seen, Viewer, current_viewer
from fraudrisk.identity.errors import AuthenticationError, PermissionDeniedError, UnknownUserError
from fraudrisk.policy.versions import FourEyesError, PolicyError, UnknownVersionError

_TITLES = {403: "Not allowed", 404: "Not found", 409: "Not done", 422: "Not understood"}


def create_dashboard(
    services: CaseServices, *, secure_cookies: bool = True, assets_dir: Path | None = None
) -> FastAPI:
    """The dashboard over the case service.

    Args:
        services: The case API's services (database, identity, case work, clock).
        secure_cookies: Send the session cookie over HTTPS only (off only for plain HTTP
            on loopback).
        assets_dir: The vendored front-end files; default: the build of the pinned lockfile
            (:func:`fraudrisk.dashboard.assets.vendor_dir`, built by ``make assets``).
    """
    app = FastAPI(title="fraudrisk dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.state.cookies = CookiePolicy(secure_cookies)
    app.state.templates = environment()
    security.install_headers(app, secure_cookies)
    _install_static(app, assets_dir or assets.vendor_dir())
    _install_error_pages(app)
    auth_pages.install(app, services, app.state.cookies)
    _install_home(app, services)
    case_pages.install(app, services)
    policy_pages.install(app, services)
    live_pages.install(app, services)
    return app


def _install_static(app: FastAPI, vendor: Path) -> None:
    """Our own files under ``/static``, the vendored ones under ``/static/vendor``."""
    own = Path(str(resources.files("fraudrisk.dashboard") / "static"))
    app.mount("/static/vendor", StaticFiles(directory=vendor, check_dir=False), name="vendor")
    app.mount("/static", StaticFiles(directory=own), name="static")


def _install_home(app: FastAPI, services: CaseServices) -> None:
    @app.get("/", include_in_schema=False)
    def home(request: Request, viewer: Seen) -> Response:
        links = links_for(viewer.principal)
        if links:
            return RedirectResponse(links[0].path, status_code=303)
        return render(request, "home.html", viewer, current="home")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/admin/users", include_in_schema=False)
    def users(request: Request, viewer: Seen) -> Response:
        guard(viewer.principal, "users")
        people = services.identity.accounts.list()
        return render(request, "users.html", viewer, current="users", people=people)


def _viewer_or_none(request: Request) -> Viewer | None:
    try:
        return current_viewer(request)
    except AuthenticationError:
        return None


def error_page(request: Request, status: int, message: str) -> Response:
    """The error page, with the person's own navigation when they are signed in."""
    title = _TITLES.get(status, "Something went wrong")
    viewer = _viewer_or_none(request)
    return render(request, "error.html", viewer, status, title=title, message=message)


def _install_error_pages(app: FastAPI) -> None:
    async def not_signed_in(request: Request, _error: Exception) -> Response:
        target = quote(request.url.path, safe="/")
        if request.method != "GET":
            target = "/"
        location = f"/login?next={target}"
        if request.headers.get("HX-Request") == "true":
            return Response(status_code=204, headers={"HX-Redirect": location})
        return RedirectResponse(location, status_code=303)

    async def forbidden(request: Request, error: Exception) -> Response:
        return error_page(request, 403, str(error))

    async def not_found(request: Request, error: Exception) -> Response:
        return error_page(request, 404, str(error))

    async def conflict(request: Request, error: Exception) -> Response:
        return error_page(request, 409, str(error))

    async def invalid(request: Request, _error: Exception) -> Response:
        return error_page(request, 422, "the request has a missing or invalid value")

    async def http_error(request: Request, error: Exception) -> Response:
        status = getattr(error, "status_code", 500)
        return error_page(request, status, str(getattr(error, "detail", "")))

    app.add_exception_handler(AuthenticationError, not_signed_in)
    app.add_exception_handler(NotSignedInError, not_signed_in)
    app.add_exception_handler(PermissionDeniedError, forbidden)
    app.add_exception_handler(FourEyesError, forbidden)
    missing: tuple[type[Exception], ...] = (
        CaseNotFoundError,
        UnknownUserError,
        UnknownVersionError,
    )
    refused: tuple[type[Exception], ...] = (
        IllegalTransitionError,
        VersionConflictError,
        ValueError,
        PolicyError,
    )
    for kind in missing:
        app.add_exception_handler(kind, not_found)
    for kind in refused:
        app.add_exception_handler(kind, conflict)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
