"""The risk team's pages: policy versions, a version's text, diff and history, four eyes.

Each page reads and changes versions through :class:`~fraudrisk.policy.versions.PolicyVersions`,
the service the case API's ``/v1/policies`` routes call (:mod:`fraudrisk.cases.policy_api`):
the steps, their order and four eyes stay its own. The buttons a person sees follow
:data:`fraudrisk.dashboard.nav.POLICY_STEPS`; a refused step is answered as the API answers
it: the author's own approval 403 naming the rule, a step out of order 409 naming the allowed
steps, a text that does not lint 422 with every ``policy.yaml:line:col: message`` beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from fastapi import FastAPI, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from fraudrisk.cases.api import CaseServices
from fraudrisk.cases.policy_api import MAX_VERSION, SOURCE
from fraudrisk.dashboard.nav import guard, guard_step, may
from fraudrisk.dashboard.rendering import render
from fraudrisk.dashboard.session import Acting, Seen, Viewer
from fraudrisk.identity.audit import AuditQuery
from fraudrisk.identity.principal import Principal
from fraudrisk.policy.linting import name_of, policy_versions
from fraudrisk.policy.versions import (
    FourEyesError,
    InvalidPolicyError,
    PolicyVersion,
    PolicyVersions,
    StepNotAllowedError,
    VersionStatus,
)

Number = Annotated[int, Path(ge=1, le=MAX_VERSION)]
Note = Annotated[str, Form(max_length=2000)]
#: The longest text a draft may have (as the API's ``DraftIn``).
TEXT_LENGTH = 200_000


class Step(StrEnum):
    """A step the version page offers (rollback stays on the API and the CLI for now)."""

    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    ACTIVATE = "activate"


#: The status each step starts from (the service decides; this only chooses the buttons).
STARTS_FROM = {
    Step.SUBMIT: VersionStatus.DRAFT,
    Step.APPROVE: VersionStatus.PENDING,
    Step.REJECT: VersionStatus.PENDING,
    Step.ACTIVATE: VersionStatus.APPROVED,
}
_Do = Callable[[PolicyVersions, Principal, int, str], PolicyVersion]
#: Each step: the ``PolicyVersions`` method the API's route calls.
DO: dict[Step, _Do] = {
    Step.SUBMIT: lambda versions, who, n, note: versions.submit(who, n, note),
    Step.APPROVE: lambda versions, who, n, note: versions.approve(who, n, note),
    Step.REJECT: lambda versions, who, n, note: versions.reject(who, n, note),
    Step.ACTIVATE: lambda versions, who, n, _note: versions.activate(who, n),
}
#: What the page says after a step (``?done=``).
DONE = {"submit": "submitted", "approve": "approved", "reject": "rejected", "activate": "activated"}


def install(app: FastAPI, services: CaseServices) -> None:
    """The policy list, the draft form and the version page with its steps."""
    versions = services.policies or policy_versions(services.engine, clock=services.clock)
    _list_pages(app, versions)
    _draft_pages(app, versions)
    _version_page(app, services, versions)
    _step_route(app, services, versions)


def _list_pages(app: FastAPI, versions: PolicyVersions) -> None:
    @app.get("/policies", include_in_schema=False)
    def policies(request: Request, viewer: Seen) -> Response:
        guard(viewer.principal, "policies")
        return render(
            request,
            "policies.html",
            viewer,
            current="policies",
            versions=versions.list(),
            may_draft=may(viewer.principal, "draft"),
        )


def _draft_form(request: Request, viewer: Viewer, status: int = 200, **values: Any) -> Response:
    form = {"text": "", "note": "", "based_on": None, "errors": [], **values}
    return render(request, "policy_new.html", viewer, status, current="policies", **form)


def _draft_pages(app: FastAPI, versions: PolicyVersions) -> None:
    @app.get("/policies/new", include_in_schema=False)
    def new_policy(
        request: Request,
        viewer: Seen,
        based_on: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    ) -> Response:
        guard(viewer.principal, "policies")
        guard_step(viewer.principal, "draft")
        text = versions.get(based_on).text if based_on else ""
        return _draft_form(request, viewer, text=text, based_on=based_on)

    @app.post("/policies", include_in_schema=False)
    def draft_policy(
        request: Request,
        viewer: Acting,
        text: Annotated[str, Form(min_length=1, max_length=TEXT_LENGTH)],
        note: Note = "",
        based_on: Annotated[int | None, Form(ge=1, le=MAX_VERSION)] = None,
    ) -> Response:
        name = name_of(text, "policy")
        try:
            drafted = versions.draft(viewer.principal, name, text, note.strip(), based_on, SOURCE)
        except InvalidPolicyError as error:
            values = {"text": text, "note": note, "based_on": based_on, "errors": error.errors}
            return _draft_form(request, viewer, 422, **values)
        return RedirectResponse(f"/policies/{drafted.number}?done=drafted", status_code=303)


def steps_for(principal: Principal, version: PolicyVersion) -> list[str]:
    """The steps the version page offers the person: submit to a draft's author only.

    Approve is offered to every approver of a pending version, its author included: the
    service refuses the author (four eyes) and the page says why.
    """
    offered = []
    for step, status in STARTS_FROM.items():
        if version.status is not status or not may(principal, step.value):
            continue
        if step is Step.SUBMIT and version.author != principal.username:
            continue
        offered.append(step.value)
    return offered


def _base_of(versions: PolicyVersions, version: PolicyVersion) -> int | None:
    """The version a version's diff is against: the one it is based on, else the active one."""
    if version.based_on is not None:
        return version.based_on
    active = versions.active()
    return active.number if active is not None and active.number != version.number else None


def _history(services: CaseServices, number: int) -> list[dict[str, Any]]:
    """The version's steps from the audit log, oldest first: when, which, by whom, why."""
    query = AuditQuery(object_type="policy", object_id=str(number), limit=200)
    return [
        {
            "at": entry["at"],
            "step": entry["action"].removeprefix("policy."),
            "actor": entry["actor"],
            "note": entry["change"].get("note", ""),
        }
        for entry in reversed(services.identity.audit.read(query))
    ]


def _version(
    request: Request,
    viewer: Viewer,
    services: CaseServices,
    versions: PolicyVersions,
    number: int,
    status: int = 200,
    **extra: Any,
) -> Response:
    version = versions.get(number)
    base = _base_of(versions, version)
    return render(
        request,
        "policy.html",
        viewer,
        status,
        current="policies",
        version=version,
        base=base,
        diff=versions.diff(base, number) if base is not None else "",
        history=_history(services, number),
        steps=steps_for(viewer.principal, version),
        may_draft=may(viewer.principal, "draft"),
        **{"problem": "", "done": "", **extra},
    )


def _version_page(app: FastAPI, services: CaseServices, versions: PolicyVersions) -> None:
    @app.get("/policies/{number}", include_in_schema=False)
    def version_page(request: Request, viewer: Seen, number: Number, done: str = "") -> Response:
        guard(viewer.principal, "policies")
        shown = done if done in {*DONE.values(), "drafted"} else ""
        return _version(request, viewer, services, versions, number, done=shown)


def _step_route(app: FastAPI, services: CaseServices, versions: PolicyVersions) -> None:
    @app.post("/policies/{number}/{step}", include_in_schema=False)
    def take_step(
        request: Request, viewer: Acting, number: Number, step: Step, note: Note = ""
    ) -> Response:
        guard(viewer.principal, "policies")
        try:
            DO[step](versions, viewer.principal, number, note.strip())
        except (FourEyesError, StepNotAllowedError) as error:
            status = 403 if isinstance(error, FourEyesError) else 409
            return _version(request, viewer, services, versions, number, status, problem=str(error))
        return RedirectResponse(f"/policies/{number}?done={DONE[step.value]}", status_code=303)
