"""The case API's plumbing: who is calling (bearer token), and errors as Problem JSON.

Every error answers ``application/problem+json`` with the status, a title and what happened
(the same shape as the Transaction API's). A case outside the caller's queues is a 404, the
same as a case that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraudrisk.cases.errors import CaseNotFoundError, NothingToClaimError, VersionConflictError
from fraudrisk.cases.lifecycle import IllegalTransitionError
from fraudrisk.identity.errors import (
    AccountLockedError,
    AuthenticationError,
    LoginError,
    PermissionDeniedError,
    UnknownUserError,
    UserExistsError,
)
from fraudrisk.identity.principal import Principal
from fraudrisk.identity.service import Identity

CHALLENGE = 'Bearer realm="fraudrisk-cases"'
_bearer = HTTPBearer(auto_error=False, description="A session (login) or personal API token.")


class Problem(BaseModel):
    """Every error response."""

    status: int
    title: str
    detail: str
    allowed: list[str] = []


#: error type → (status, title); the first match wins.
_STATUS: list[tuple[type[Exception], int, str]] = [
    (AccountLockedError, 423, "Locked"),
    (LoginError, 401, "Unauthorized"),
    (AuthenticationError, 401, "Unauthorized"),
    (PermissionDeniedError, 403, "Forbidden"),
    (CaseNotFoundError, 404, "Not Found"),
    (UnknownUserError, 404, "Not Found"),
    (IllegalTransitionError, 409, "Conflict"),
    (VersionConflictError, 409, "Conflict"),
    (UserExistsError, 409, "Conflict"),
    (NothingToClaimError, 404, "Not Found"),
    (ValueError, 422, "Unprocessable Content"),
]


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """A Problem JSON response."""
    body = Problem(status=status, title=title, detail=detail, **extra).model_dump()
    headers = {"WWW-Authenticate": CHALLENGE} if status == 401 else None
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")


def install_error_handlers(app: FastAPI) -> None:
    """Map the service's errors, HTTP errors and validation errors to Problem JSON."""

    async def service_error(_request: Request, error: Exception) -> JSONResponse:
        for kind, status, title in _STATUS:
            if isinstance(error, kind):
                allowed = getattr(error, "allowed", [])
                return problem(status, title, str(error), allowed=allowed)
        raise error

    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem(error.status_code, str(error.detail), str(error.detail))

    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return problem(422, "Unprocessable Content", fields)

    async def unstorable(_request: Request, error: DataError) -> JSONResponse:
        # A value of the request the database refuses (PostgreSQL: a NUL character in a
        # text): the client's to change. The driver's reason only, never the SQL.
        reason = str(error.orig).strip().splitlines()[0] if error.orig else "invalid value"
        return problem(422, "Unprocessable Content", f"a value of the request is refused: {reason}")

    for kind, _status, _title in _STATUS:
        app.add_exception_handler(kind, service_error)
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, invalid)  # type: ignore[arg-type]
    app.add_exception_handler(DataError, unstorable)  # type: ignore[arg-type]


def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The bearer token of the request.

    Raises:
        AuthenticationError: If there is none.
    """
    if credentials is None or not credentials.credentials:
        raise AuthenticationError("sign in first: send Authorization: Bearer <token>")
    return credentials.credentials


def client_address(request: Request) -> str:
    """Where a request comes from, for the audit log."""
    return request.client.host if request.client else "unknown"


def principal_of(identity: Identity, request: Request, token: str) -> Principal:
    """The authenticated person of a request (re-checked on every request)."""
    return identity.sessions.authenticate(token, source=client_address(request))
