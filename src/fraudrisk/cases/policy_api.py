"""The policy routes of the case API: versions and four eyes (``/v1/policies``).

The same steps as ``fraudrisk policy`` (:mod:`fraudrisk.policy.versions`), each done as the
caller of the request (their bearer token): reading needs ``policy:read``; drafting and
submitting ``policy:author``; approving, rejecting, activating and rolling back
``policy:approve``. Errors are Problem JSON: an author approving their own version is **403**
(four eyes, like any refusal of who the caller is); a step the version's status does not allow
is **409** with the allowed steps in ``allowed``; an unknown version is **404**; a text that
does not parse or type-check is **422** with every error, ``policy.yaml:line:col: message``, in
``errors``.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from fraudrisk.cases.http import Problem, bearer_token, principal_of, problem
from fraudrisk.identity.principal import Principal
from fraudrisk.identity.roles import Permission
from fraudrisk.policy.linting import NAME_LENGTH, name_of
from fraudrisk.policy.versions import (
    FourEyesError,
    InvalidPolicyError,
    PolicyError,
    PolicyVersion,
    PolicyVersions,
    StepNotAllowedError,
    UnknownVersionError,
    VersionStatus,
)

#: The largest version number (an ``Integer`` id): larger is no version (422, never a 500).
MAX_VERSION = 2**31 - 1
#: What the errors of a posted text start with.
SOURCE = "policy.yaml"
Number = Annotated[int, Path(ge=1, le=MAX_VERSION, description="A version's number.")]
TAGS: list[str | Enum] = ["policies"]
_NOTE = Field("", max_length=2000, description="Why (kept with the version, audited).")


class PolicyProblem(Problem):
    """An error of a policy route; ``errors`` lists a refused text's problems."""

    errors: list[str] = Field(default_factory=list)


class PolicySummary(BaseModel):
    """One version without its text."""

    number: int
    name: str
    status: VersionStatus
    digest: str
    based_on: int | None
    author: str
    created_at: dt.datetime
    note: str
    submitted_at: dt.datetime | None
    approver: str | None
    approved_at: dt.datetime | None
    activated_by: str | None
    activated_at: dt.datetime | None
    retired_at: dt.datetime | None

    @classmethod
    def of(cls, version: PolicyVersion) -> PolicySummary:
        """The summary of a stored version."""
        fields = {name: getattr(version, name) for name in PolicySummary.model_fields}
        return cls(**fields)


class PolicyDetail(PolicySummary):
    """One version with its YAML text."""

    text: str

    @classmethod
    def of(cls, version: PolicyVersion) -> PolicyDetail:
        """The detail of a stored version."""
        return cls(**PolicySummary.of(version).model_dump(), text=version.text)


class DraftIn(BaseModel):
    """A new draft: the YAML text, its name (default: the text's ``name``), why."""

    text: str = Field(min_length=1, max_length=200_000)
    name: str | None = Field(None, min_length=1, max_length=NAME_LENGTH)
    note: str = _NOTE
    based_on: int | None = Field(None, ge=1, le=MAX_VERSION)


class NoteIn(BaseModel):
    """A step's note."""

    note: str = _NOTE


class RollbackIn(BaseModel):
    """The retired version to make active again, and why."""

    to: int = Field(ge=1, le=MAX_VERSION)
    note: str = _NOTE


class DiffOut(BaseModel):
    """The unified diff of two versions' texts (``v<a>`` → ``v<b>``; empty: the same)."""

    old: int
    new: int
    diff: str


#: policy error → (status, title); the first match wins.
_STATUS: list[tuple[type[PolicyError], int, str]] = [
    (UnknownVersionError, 404, "Not Found"),
    (InvalidPolicyError, 422, "Unprocessable Content"),
    (FourEyesError, 403, "Forbidden"),
    (StepNotAllowedError, 409, "Conflict"),
    (PolicyError, 409, "Conflict"),
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": PolicyProblem, "description": title} for _, status, title in _STATUS
}


async def _policy_problem(_request: Request, error: Exception) -> JSONResponse:
    """A policy error as Problem JSON (with ``allowed`` steps, or a text's ``errors``)."""
    status, title = next((s, t) for kind, s, t in _STATUS if isinstance(error, kind))
    if isinstance(error, InvalidPolicyError):
        body = PolicyProblem(status=status, title=title, detail=str(error), errors=error.errors)
        return JSONResponse(body.model_dump(), status, media_type="application/problem+json")
    return problem(status, title, str(error), allowed=getattr(error, "allowed", []))


def _caller(request: Request, token: Annotated[str, Depends(bearer_token)]) -> Principal:
    """The authenticated person of the request, as every case API route resolves them."""
    return principal_of(request.app.state.services.identity, request, token)


Caller = Annotated[Principal, Depends(_caller)]


def install(app: FastAPI, versions: PolicyVersions) -> None:
    """Add the policy routes over ``versions`` (and the mapping of their errors) to ``app``."""
    app.add_exception_handler(PolicyError, _policy_problem)
    _read_routes(app, versions)
    _step_routes(app, versions)


def _read_routes(app: FastAPI, versions: PolicyVersions) -> None:
    @app.get("/v1/policies", tags=TAGS, responses=_ERRORS)
    def list_policies(caller: Caller, status: VersionStatus | None = None) -> list[PolicySummary]:
        caller.require(Permission.POLICY_READ)
        return [PolicySummary.of(v) for v in versions.list(status)]

    @app.get("/v1/policies/active", tags=TAGS, responses=_ERRORS)
    def active_policy(caller: Caller) -> PolicyDetail:
        caller.require(Permission.POLICY_READ)
        active = versions.active()
        if active is None:
            raise UnknownVersionError("no policy version is active yet")
        return PolicyDetail.of(active)

    @app.get("/v1/policies/{n}", tags=TAGS, responses=_ERRORS)
    def get_policy(n: Number, caller: Caller) -> PolicyDetail:
        caller.require(Permission.POLICY_READ)
        return PolicyDetail.of(versions.get(n))

    @app.get("/v1/policies/{a}/diff/{b}", tags=TAGS, responses=_ERRORS)
    def diff_policies(a: Number, b: Number, caller: Caller) -> DiffOut:
        caller.require(Permission.POLICY_READ)
        return DiffOut(old=a, new=b, diff=versions.diff(a, b))


def _step_routes(app: FastAPI, versions: PolicyVersions) -> None:
    @app.post("/v1/policies", tags=TAGS, status_code=201, responses=_ERRORS)
    def draft_policy(body: DraftIn, caller: Caller) -> PolicyDetail:
        name = body.name or name_of(body.text, "policy")
        drafted = versions.draft(caller, name, body.text, body.note, body.based_on, SOURCE)
        return PolicyDetail.of(drafted)

    @app.post("/v1/policies/rollback", tags=TAGS, responses=_ERRORS)
    def rollback_policy(body: RollbackIn, caller: Caller) -> PolicySummary:
        return PolicySummary.of(versions.rollback(caller, body.to, body.note))

    @app.post("/v1/policies/{n}/submit", tags=TAGS, responses=_ERRORS)
    def submit_policy(n: Number, caller: Caller, body: NoteIn | None = None) -> PolicySummary:
        return PolicySummary.of(versions.submit(caller, n, (body or NoteIn()).note))

    @app.post("/v1/policies/{n}/approve", tags=TAGS, responses=_ERRORS)
    def approve_policy(n: Number, caller: Caller, body: NoteIn | None = None) -> PolicySummary:
        return PolicySummary.of(versions.approve(caller, n, (body or NoteIn()).note))

    @app.post("/v1/policies/{n}/reject", tags=TAGS, responses=_ERRORS)
    def reject_policy(n: Number, caller: Caller, body: NoteIn | None = None) -> PolicySummary:
        return PolicySummary.of(versions.reject(caller, n, (body or NoteIn()).note))

    @app.post("/v1/policies/{n}/activate", tags=TAGS, responses=_ERRORS)
    def activate_policy(n: Number, caller: Caller) -> PolicySummary:
        return PolicySummary.of(versions.activate(caller, n))
