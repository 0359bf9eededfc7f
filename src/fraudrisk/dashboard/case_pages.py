"""The analysts' pages: my queue, the team's queues, claim next, and the case page.

Each page reads and changes cases through the functions the case API's routes call
(:mod:`fraudrisk.cases.queries`, :mod:`~fraudrisk.cases.queues`, :class:`~fraudrisk.cases.work.
CaseWork`): the queue limits, the permission checks and the lifecycle stay theirs. A page
guard (:mod:`fraudrisk.dashboard.nav`) refuses a page its link would not be shown for.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from fraudrisk.cases import queries, queues
from fraudrisk.cases.api import MAX_ID, CaseServices
from fraudrisk.cases.errors import NothingToClaimError
from fraudrisk.cases.lifecycle import OPEN_STATUSES, TRANSITIONS, Action, Disposition, Status
from fraudrisk.cases.queries import CaseFilter
from fraudrisk.cases.views import CaseSummary
from fraudrisk.cases.work import Move
from fraudrisk.dashboard.charts import reasons_chart
from fraudrisk.dashboard.nav import guard
from fraudrisk.dashboard.rendering import render
from fraudrisk.dashboard.session import Acting, Seen, Viewer

CaseId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueueName = Annotated[str, Path(min_length=1, max_length=64)]
#: The actions the case page offers (the others stay on the API for now).
PAGE_ACTIONS = (Action.CLAIM, Action.START, Action.RESOLVE)
NOTICES = {"nothing-to-claim": "No unassigned case is waiting in that queue."}


def install(app: FastAPI, services: CaseServices) -> None:
    """The queue pages and the case page."""
    _queue_pages(app, services)
    _case_page(app, services)
    _case_changes(app, services)


def _rows(services: CaseServices, viewer: Viewer, where: CaseFilter) -> list[CaseSummary]:
    with services.engine.connect() as connection:
        return queries.list_cases(connection, viewer.principal, where, services.clock())


def _queue_pages(app: FastAPI, services: CaseServices) -> None:
    @app.get("/queue", include_in_schema=False)
    def my_queue(request: Request, viewer: Seen, notice: str = "") -> Response:
        guard(viewer.principal, "my-queue")
        mine = CaseFilter(assignee=viewer.principal.username, status=OPEN_STATUSES, limit=200)
        member_of = [
            q
            for q in queues.list_queues(services.engine, viewer.principal, services.clock())
            if viewer.principal.username in q.members
        ]
        return render(
            request,
            "my_queue.html",
            viewer,
            current="my-queue",
            cases=_rows(services, viewer, mine),
            queues=member_of,
            now=services.clock(),
            notice=NOTICES.get(notice, ""),
        )

    @app.get("/queues", include_in_schema=False)
    def team_queues(request: Request, viewer: Seen) -> Response:
        guard(viewer.principal, "queues")
        views = queues.list_queues(services.engine, viewer.principal, services.clock())
        return render(request, "queues.html", viewer, current="queues", queues=views)

    @app.get("/queues/{queue}", include_in_schema=False)
    def queue_page(
        request: Request,
        viewer: Seen,
        queue: QueueName,
        status: Annotated[list[Status] | None, Query()] = None,
    ) -> Response:
        guard(viewer.principal, "queues")
        chosen = tuple(s.value for s in status or ()) or OPEN_STATUSES
        cases = _rows(services, viewer, CaseFilter(queue=queue, status=chosen, limit=200))
        fragment = request.headers.get("HX-Request") == "true"
        return render(
            request,
            "_cases.html" if fragment else "queue.html",
            viewer,
            current="queues",
            queue=queue,
            cases=cases,
            chosen=chosen,
            statuses=[s.value for s in Status],
            now=services.clock(),
        )

    @app.post("/queues/{queue}/claim-next", include_in_schema=False)
    def claim_next(viewer: Acting, queue: QueueName) -> Response:
        try:
            claimed = services.work.claim_next(viewer.principal, queue)
        except NothingToClaimError:
            return RedirectResponse("/queue?notice=nothing-to-claim", status_code=303)
        return RedirectResponse(f"/cases/{claimed.id}", status_code=303)


def _case_page(app: FastAPI, services: CaseServices) -> None:
    @app.get("/cases/{case_id}", include_in_schema=False)
    def case_page(request: Request, viewer: Seen, case_id: CaseId) -> Response:
        guard(viewer.principal, "queues")
        with services.engine.connect() as connection:
            view = queries.case_view(
                connection, viewer.principal, case_id, services.clock(), services.baselines
            )
        allowed = TRANSITIONS[Status(view.case.status)]
        return render(
            request,
            "case.html",
            viewer,
            current="queues",
            view=view,
            chart=reasons_chart(view.reasons),
            actions=[a.value for a in PAGE_ACTIONS if a in allowed],
            dispositions=[d.value for d in Disposition],
            now=services.clock(),
        )


def _case_changes(app: FastAPI, services: CaseServices) -> None:
    @app.post("/cases/{case_id}/actions", include_in_schema=False)
    def act(
        viewer: Acting,
        case_id: CaseId,
        action: Annotated[Action, Form()],
        version: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
        disposition: Annotated[Disposition | None, Form()] = None,
        note: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        move = Move(action, version, disposition, None, None, note.strip())
        services.work.act(viewer.principal, case_id, move)
        return RedirectResponse(f"/cases/{case_id}", status_code=303)

    @app.post("/cases/{case_id}/comments", include_in_schema=False)
    def comment(
        request: Request,
        viewer: Acting,
        case_id: CaseId,
        text: Annotated[str, Form(max_length=10_000)] = "",
    ) -> Response:
        services.work.comment(viewer.principal, case_id, text)
        if request.headers.get("HX-Request") != "true":
            return RedirectResponse(f"/cases/{case_id}#timeline", status_code=303)
        with services.engine.connect() as connection:
            view = queries.case_view(connection, viewer.principal, case_id, services.clock())
        return render(request, "_timeline.html", viewer, view=view)
