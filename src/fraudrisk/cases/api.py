"""The case API (FastAPI, ``fraudrisk cases serve``): versioned REST under ``/v1/``.

Every route but ``/healthz``, ``/v1/auth/login`` and the corporate login (``/v1/auth/oidc/…``,
when ``identity.oidc`` is on) needs a bearer token (a login session or a personal API token);
each checks the caller's permission and, for a case or a queue, that it is one of theirs.
The policy versions and their four-eyes steps are under ``/v1/policies``
(:mod:`fraudrisk.cases.policy_api`). OpenAPI at ``/openapi.json``, docs at ``/docs``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.engine import Engine

from fraudrisk.cases import events, policy_api, queries, queues
from fraudrisk.cases.http import (
    bearer_token,
    client_address,
    install_error_handlers,
    principal_of,
    problem,
)
from fraudrisk.cases.lifecycle import Action, Disposition
from fraudrisk.cases.prometheus import CaseMetrics
from fraudrisk.cases.queries import Baselines, CaseFilter
from fraudrisk.cases.views import CaseSummary, CaseView, Event
from fraudrisk.cases.work import CaseWork, Move
from fraudrisk.identity import oidc
from fraudrisk.identity.audit import AuditQuery
from fraudrisk.identity.principal import Principal
from fraudrisk.identity.roles import Permission
from fraudrisk.identity.service import Identity
from fraudrisk.io.database import utcnow
from fraudrisk.policy.linting import policy_versions
from fraudrisk.policy.versions import PolicyVersions

#: The largest id of an ``Integer`` column, and the range of a ``BigInteger`` one: a number
#: outside is no id (422), never sent to the database (whose refusal would be a 500).
MAX_ID = 2**31 - 1
BIG = 2**63 - 1
CaseId = Annotated[int, Path(ge=1, le=MAX_ID)]


@dataclass
class CaseServices:
    """What the routes use: the database, identity, case work, the clock, policy versions."""

    engine: Engine
    identity: Identity
    work: CaseWork
    clock: Callable[[], dt.datetime] = utcnow
    baselines: Baselines | None = None
    oidc: oidc.OidcLogin | None = None  # None: from the identity settings (off by default)
    #: None: the versions of ``engine``'s database, queue names of ``route`` rules unchecked.
    policies: PolicyVersions | None = None


class LoginIn(BaseModel):
    """Credentials: password and (when MFA is required) a TOTP or recovery code."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    code: str = Field("", max_length=32)


class TokenOut(BaseModel):
    """A session token (shown once)."""

    token: str
    expires_at: dt.datetime


class Me(BaseModel):
    """The signed-in person."""

    username: str
    role: str
    permissions: list[str]


class MoveIn(BaseModel):
    """An action on a case; ``version`` is the one read (stale = 409)."""

    action: Action
    version: int | None = Field(None, ge=1, le=MAX_ID)
    disposition: Disposition | None = None
    assignee: str | None = Field(None, max_length=64)
    until: dt.datetime | None = None
    note: str = Field("", max_length=2000)

    @field_validator("until")
    @classmethod
    def _naive_utc(cls, until: dt.datetime | None) -> dt.datetime | None:
        """The wake-up time as the database stores times (naive UTC)."""
        if until is None:
            return None
        try:
            return until.astimezone(dt.UTC).replace(tzinfo=None)
        except (OverflowError, ValueError):  # 0001-01-01T00:00+01:00 is before year 1 in UTC
            raise ValueError("the time is out of range") from None

    def move(self) -> Move:
        """The service's form of it."""
        return Move(
            self.action, self.version, self.disposition, self.assignee, self.until, self.note
        )


class BulkIn(MoveIn):
    """One action on many cases."""

    case_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=500)


class CommentIn(BaseModel):
    """A comment on a case."""

    text: str = Field(min_length=1, max_length=10_000)


def create_app(services: CaseServices) -> FastAPI:
    """The case API over its services."""
    app = FastAPI(
        title="fraudrisk case API",
        version="1",
        description="Alerts become cases that analysts route, work and resolve.",
    )
    install_error_handlers(app)
    app.state.services = services

    _auth_routes(app, services)
    _oidc_routes(app, services)
    _case_routes(app, services)
    _admin_routes(app, services)
    _policy_routes(app, services)
    return app


def _current(request: Request, token: Annotated[str, Depends(bearer_token)]) -> Principal:
    services: CaseServices = request.app.state.services
    return principal_of(services.identity, request, token)


#: The authenticated caller of a route (401 without a valid token).
Caller = Annotated[Principal, Depends(_current)]


def _auth_routes(app: FastAPI, services: CaseServices) -> None:
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/auth/login", tags=["auth"])
    def login(body: LoginIn, request: Request) -> TokenOut:
        source = request.client.host if request.client else ""
        issued = services.identity.sessions.login(body.username, body.password, body.code, source)
        return TokenOut(token=issued.token, expires_at=issued.expires_at)

    @app.post("/v1/auth/logout", tags=["auth"], status_code=204)
    def logout(token: Annotated[str, Depends(bearer_token)]) -> None:
        services.identity.sessions.logout(token)

    @app.post("/v1/auth/logout-everywhere", tags=["auth"])
    def logout_everywhere(caller: Caller) -> dict[str, int]:
        ended = services.identity.sessions.logout_everywhere(caller.actor, caller.username)
        return {"sessions_ended": ended}

    @app.get("/v1/me", tags=["auth"])
    def me(caller: Caller) -> Me:
        return Me(
            username=caller.username,
            role=caller.role.value,
            permissions=sorted(p.value for p in caller.permissions),
        )


_OidcText = Annotated[str, Query(max_length=4096)]


def _oidc_routes(app: FastAPI, services: CaseServices) -> None:
    """Corporate login (OIDC): a redirect to the provider, its callback → a session token."""
    flow = services.oidc or oidc.oidc_login_for(services.identity.sessions)

    async def oidc_problem(_request: Request, error: Exception) -> JSONResponse:
        status, title = getattr(error, "status", 401), getattr(error, "title", "Unauthorized")
        return problem(status, title, str(error))

    app.add_exception_handler(oidc.OidcError, oidc_problem)

    def started() -> oidc.OidcLogin:
        if flow is None:
            raise oidc.OidcDisabledError(
                "corporate login (OIDC) is off here: log in with a password"
            )
        return flow

    @app.get(
        "/v1/auth/oidc/login",
        tags=["auth"],
        status_code=302,
        response_class=RedirectResponse,
        responses={302: {"description": "To the identity provider's login page."}},
    )
    def oidc_login() -> RedirectResponse:
        start = started().begin()
        response = RedirectResponse(start.url, status_code=302)
        response.set_cookie(
            oidc.COOKIE,
            start.cookie,
            max_age=start.max_age,
            path=start.cookie_path,
            secure=start.secure,
            httponly=True,
            samesite="lax",
        )
        return response

    @app.get("/v1/auth/oidc/callback", tags=["auth"])
    def oidc_callback(
        request: Request,
        response: Response,
        code: _OidcText = "",
        state: _OidcText = "",
        error: _OidcText = "",
        iss: _OidcText = "",
    ) -> TokenOut:
        login = started()
        answer = oidc.Callback(code, state, error, iss)
        issued = login.finish(answer, request.cookies.get(oidc.COOKIE), client_address(request))
        response.delete_cookie(oidc.COOKIE, path=login.cookie_path, httponly=True, samesite="lax")
        response.headers["Cache-Control"] = "no-store"
        return TokenOut(token=issued.token, expires_at=issued.expires_at)


def _case_routes(app: FastAPI, services: CaseServices) -> None:
    work = services.work

    @app.get("/v1/queues", tags=["queues"])
    def list_queues(caller: Caller) -> list[queues.QueueView]:
        return queues.list_queues(services.engine, caller, services.clock())

    @app.post("/v1/queues/{queue}/claim-next", tags=["queues"])
    def claim_next(queue: str, caller: Caller) -> CaseSummary:
        return work.claim_next(caller, queue)

    @app.get("/v1/cases", tags=["cases"])
    def list_cases(
        caller: Caller,
        queue: str | None = None,
        status: Annotated[list[str] | None, Query()] = None,
        assignee: str | None = None,
        customer_id: Annotated[int | None, Query(ge=-BIG - 1, le=BIG)] = None,
        min_priority: float | None = None,
        limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[CaseSummary]:
        caller.require(Permission.CASES_READ)
        where = CaseFilter(
            queue, tuple(status or ()), assignee, customer_id, min_priority, limit, offset
        )
        with services.engine.connect() as connection:
            return queries.list_cases(connection, caller, where, services.clock())

    @app.get("/v1/cases/{case_id}", tags=["cases"])
    def get_case(case_id: CaseId, caller: Caller) -> CaseView:
        caller.require(Permission.CASES_READ)
        with services.engine.connect() as connection:
            return queries.case_view(
                connection, caller, case_id, services.clock(), services.baselines
            )

    @app.post("/v1/cases/{case_id}/actions", tags=["cases"])
    def act(case_id: CaseId, body: MoveIn, caller: Caller) -> CaseSummary:
        return work.act(caller, case_id, body.move())

    @app.post("/v1/cases/{case_id}/comments", tags=["cases"], status_code=201)
    def comment(case_id: CaseId, body: CommentIn, caller: Caller) -> Event:
        return work.comment(caller, case_id, body.text)

    @app.get("/v1/events", tags=["cases"], response_class=StreamingResponse)
    def case_events(
        caller: Caller,
        after: Annotated[
            int | None, Query(ge=0, le=MAX_ID, description="Resume after this event id.")
        ] = None,
        timeout: Annotated[float, Query(gt=0, le=300, description="End after seconds.")] = 60,
        last_event_id: Annotated[int | None, Header(ge=0, le=MAX_ID)] = None,
    ) -> StreamingResponse:
        caller.require(Permission.CASES_READ)
        start = after if after is not None else last_event_id
        if start is None:
            start = events.last_event_id(services.engine)
        body = events.stream(services.engine, caller, start, timeout, time.monotonic)
        return StreamingResponse(body, media_type="text/event-stream")

    @app.post("/v1/cases/bulk", tags=["cases"])
    def bulk(body: BulkIn, caller: Caller) -> dict[int, str]:
        return work.bulk(caller, body.case_ids, body.move())


def _admin_routes(app: FastAPI, services: CaseServices) -> None:
    @app.get("/v1/audit", tags=["admin"])
    def audit_log(
        caller: Caller,
        actor: str | None = None,
        action: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> list[dict[str, Any]]:
        caller.require(Permission.AUDIT_READ)
        query = AuditQuery(actor, action, object_type, object_id, None, None, limit, before_id)
        return services.identity.audit.read(query)

    registry = CollectorRegistry()
    registry.register(CaseMetrics(services.engine, services.clock))

    @app.get("/metrics", tags=["health"], response_class=Response)
    def metrics(caller: Caller) -> Response:
        caller.require(Permission.MONITORING_READ)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/users", tags=["admin"])
    def users(caller: Caller) -> list[dict[str, Any]]:
        caller.require(Permission.USERS_MANAGE)
        return [{**u.__dict__, "role": u.role.value} for u in services.identity.accounts.list()]

    @app.put("/v1/queues/{queue}/members/{username}", tags=["admin"], status_code=204)
    def add_member(queue: str, username: str, caller: Caller) -> None:
        queues.set_membership(services.engine, caller, queue, username, True)

    @app.delete("/v1/queues/{queue}/members/{username}", tags=["admin"], status_code=204)
    def remove_member(queue: str, username: str, caller: Caller) -> None:
        queues.set_membership(services.engine, caller, queue, username, False)


def _policy_routes(app: FastAPI, services: CaseServices) -> None:
    """``/v1/policies``: versions and four eyes (:mod:`fraudrisk.cases.policy_api`)."""
    versions = services.policies or policy_versions(services.engine, clock=services.clock)
    policy_api.install(app, versions)
