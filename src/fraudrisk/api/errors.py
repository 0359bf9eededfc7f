"""Error responses: one :class:`~fraudrisk.api.models.Problem` body for every error status.

Validation errors name the field (``transactions[2].tx_amount``) and the rule, never the value:
pydantic's ``input`` is dropped, a client-chosen field name is shown only if it is a plain
identifier, and any card-number-like digit run left in a message is redacted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraudrisk.api.auth import AuthError, ScopeError
from fraudrisk.api.models import FieldError, Problem
from fraudrisk.api.tokens import redact_card_numbers

log = logging.getLogger(__name__)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_FRIENDLY = {
    "currency": "must be an ISO 4217 code (3 upper-case letters)",
    "country": "must be an ISO 3166-1 alpha-2 code (2 upper-case letters)",
    "merchant_category": "must be an ISO 18245 merchant category code (4 digits)",
}
_SOURCES = {"query": "query parameter ", "header": "header ", "path": "path parameter "}


class ApiError(Exception):
    """An error answered with a Problem body (and a metrics reason)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        reason: str,
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.reason = status, title, detail, reason
        self.errors = list(errors)
        self.headers = headers or {}


def invalid(errors: Sequence[FieldError]) -> ApiError:
    """422 for field errors found after schema validation."""
    return ApiError(422, "Unprocessable Content", _summary(errors), "validation", errors)


def problem(error: ApiError, request: Request) -> JSONResponse:
    """The response of an error; records the rejection reason for the metrics."""
    request.state.reject_reason = error.reason
    body = Problem(status=error.status, title=error.title, detail=error.detail, errors=error.errors)
    return JSONResponse(body.model_dump(), status_code=error.status, headers=error.headers)


def field_path(loc: Sequence[Any]) -> str:
    """``("body", "transactions", 2, "tx_amount")`` as ``transactions[2].tx_amount``."""
    parts = list(loc)
    prefix = ""
    if parts and parts[0] in ("body", *_SOURCES):
        prefix = _SOURCES.get(str(parts.pop(0)), "")
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = str(part) if _IDENTIFIER.match(str(part)) else "<field>"
            path += f".{name}" if path else name
    return prefix + (path or "body")


def _message(error: dict[str, Any]) -> str:
    text = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    last = error.get("loc", ())[-1:] or ("",)
    if error.get("type") == "string_pattern_mismatch" and last[0] in _FRIENDLY:
        text = _FRIENDLY[str(last[0])]
    elif error.get("type") == "extra_forbidden":
        text = "unknown field"
    elif error.get("type") == "json_invalid":
        text = "the body is not valid JSON"
    return redact_card_numbers(text)


def _summary(errors: Sequence[FieldError]) -> str:
    shown = "; ".join(f"{e.field}: {e.message}" for e in errors[:3])
    more = len(errors) - 3
    return shown + (f" (and {more} more)" if more > 0 else "")


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(field=field_path(e.get("loc", ())), message=_message(e))
        for e in exc.errors()[:20]
    ]
    return problem(invalid(errors), request)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem(exc, request)


async def _on_auth(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    headers = {"WWW-Authenticate": exc.challenge}
    return problem(
        ApiError(401, "Unauthorized", exc.reason, "unauthenticated", headers=headers), request
    )


async def _on_scope(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ScopeError)
    headers = {"WWW-Authenticate": exc.challenge}
    return problem(ApiError(403, "Forbidden", str(exc), "forbidden", headers=headers), request)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = {404: "Not Found", 405: "Method Not Allowed", 413: "Content Too Large"}.get(
        exc.status_code, "Error"
    )
    reason = "too_large" if exc.status_code == 413 else "http"
    headers = dict(exc.headers) if exc.headers else None
    error = ApiError(exc.status_code, title, str(exc.detail), reason, headers=headers)
    return problem(error, request)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    route = getattr(request.scope.get("route"), "path", "?")
    log.error("internal error on %s: %s", route, type(exc).__name__)
    error = ApiError(500, "Internal Server Error", "internal error", "internal")
    return problem(error, request)


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(AuthError, _on_auth)
    app.add_exception_handler(ScopeError, _on_scope)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)


#: OpenAPI ``responses`` of every error a transaction route can answer.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text}
    for status, text in (
        (400, "Mode not available (async mode with Kafka disabled)."),
        (401, "Missing or invalid credentials (WWW-Authenticate says how)."),
        (403, "Valid credentials without the scope transactions:write."),
        (413, "Body larger than max_body_bytes or more than max_batch transactions."),
        (422, "Invalid transaction: every error names its field, never its value."),
        (429, "Rate limited: retry after Retry-After seconds."),
        (503, "Kafka did not acknowledge (async) or no scorer is available (sync)."),
    )
}
