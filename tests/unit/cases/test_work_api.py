"""Working cases through the API: moves, conflicts, claim-next, comments, bulk, the audit log.

Each test has its own database (a copy of the template) with three customers' cases in the
``general`` queue, an analyst and a senior analyst who are members of it, and a second analyst.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.unit.cases.case_doubles import DAY, CaseWorld, alert

from fraudrisk.cases import queries
from fraudrisk.cases.errors import CaseNotFoundError, VersionConflictError
from fraudrisk.cases.lifecycle import TRANSITIONS, Action, IllegalTransitionError, Status
from fraudrisk.cases.tables import CASES
from fraudrisk.cases.work import CaseWork, Move, Resolution
from fraudrisk.identity.audit import AuditQuery
from fraudrisk.identity.roles import Role

#: customer → (amount, risk): expected losses 90, 40 and 10 (all below the large-amount rule)
LOSSES = {1: (100.0, 0.9), 2: (200.0, 0.2), 3: (50.0, 0.2)}


@dataclass
class Desk:
    """The world of one test, its client, and the case id of each customer."""

    world: CaseWorld
    client: TestClient
    case_of: dict[int, int]
    resolved: list[Resolution]

    def as_(self, username: str) -> dict[str, str]:
        return self.world.bearer(username)

    def act(self, username: str, case_id: int, **body: Any) -> Any:
        return self.client.post(
            f"/v1/cases/{case_id}/actions", json=body, headers=self.as_(username)
        )

    def case(self, username: str, case_id: int) -> dict[str, Any]:
        answer = self.client.get(f"/v1/cases/{case_id}", headers=self.as_(username))
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


@pytest.fixture()
def desk(fresh: CaseWorld) -> Iterator[Desk]:
    fresh.store.write([alert(c, c, DAY, amount, risk) for c, (amount, risk) in LOSSES.items()])
    fresh.ingester().ingest_all()
    fresh.add_user("ana", Role.ANALYST, ["general"])
    fresh.add_user("bo", Role.ANALYST, ["general"])
    fresh.add_user("sam", Role.SENIOR_ANALYST, ["general"])
    resolved: list[Resolution] = []
    fresh.work.on_resolved = resolved.append
    with fresh.engine.connect() as connection:
        case_of = dict(connection.execute(sa.select(CASES.c.customer_id, CASES.c.id)).all())
    with TestClient(fresh.app()) as client:
        yield Desk(fresh, client, case_of, resolved)


def future(hours: float = 1) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat()


def test_an_illegal_move_is_409_naming_the_allowed_ones(desk: Desk) -> None:
    case_id = desk.case_of[1]
    refused = desk.act("ana", case_id, action="start")  # a new case must be taken first
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["allowed"] == sorted(a.value for a in TRANSITIONS[Status.NEW])
    assert "cannot start a case that is new" in body["detail"]
    assert desk.case("ana", case_id)["case"]["version"] == 1  # nothing changed


def test_a_stale_version_is_409_and_nothing_is_overwritten(desk: Desk) -> None:
    case_id = desk.case_of[1]
    read = desk.case("ana", case_id)["case"]["version"]
    assert desk.act("ana", case_id, action="claim", version=read).status_code == 200
    stale = desk.act("bo", case_id, action="snooze", until=future(), version=read)
    assert stale.status_code == 409
    assert f"changed since version {read} (now {read + 1})" in stale.json()["detail"]
    after = desk.case("ana", case_id)["case"]
    assert (after["assignee"], after["snoozed_until"], after["version"]) == ("ana", None, 2)
    again = desk.act("bo", case_id, action="snooze", until=future(), version=after["version"])
    assert again.status_code == 200 and again.json()["version"] == 3


def test_resolving_without_a_disposition_is_422(desk: Desk) -> None:
    case_id = desk.case_of[1]
    refused = desk.act("ana", case_id, action="resolve")
    assert refused.status_code == 422
    assert "needs a disposition" in refused.json()["detail"]
    assert desk.case("ana", case_id)["case"]["status"] == "new"
    unknown = desk.act("ana", case_id, action="resolve", disposition="maybe")
    assert unknown.status_code == 422
    resolved = desk.act("ana", case_id, action="resolve", disposition="confirmed-fraud")
    assert resolved.status_code == 200
    assert (resolved.json()["status"], resolved.json()["disposition"]) == (
        "resolved",
        "confirmed-fraud",
    )
    (resolution,) = desk.resolved  # handed on after commit: the labels go out from there
    assert (resolution.case_id, resolution.label, resolution.resolved_by) == (case_id, 1, "ana")
    assert resolution.transaction_ids == [1]


def test_snoozing_into_the_past_is_422(desk: Desk) -> None:
    case_id = desk.case_of[1]
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    for body in ({"action": "snooze", "until": past}, {"action": "snooze"}):
        refused = desk.act("ana", case_id, **body)
        assert refused.status_code == 422, body
        assert "wake-up time in the future" in refused.json()["detail"]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    snoozed = desk.act("ana", case_id, action="snooze", until=later.isoformat())
    assert snoozed.status_code == 200
    woken = dt.datetime.fromisoformat(snoozed.json()["snoozed_until"])
    assert woken == later.replace(tzinfo=None)  # stored as naive UTC
    assert snoozed.json()["status"] == "new"  # snoozing keeps the status


def test_claim_next_takes_the_highest_priority_first_and_skips_snoozed(desk: Desk) -> None:
    by_loss = sorted(LOSSES, key=lambda c: -LOSSES[c][0] * LOSSES[c][1])
    assert by_loss == [1, 2, 3]
    snoozed = desk.act("sam", desk.case_of[2], action="snooze", until=future())
    assert snoozed.status_code == 200

    claims = [
        desk.client.post("/v1/queues/general/claim-next", headers=desk.as_(u))
        for u in ("ana", "bo")
    ]
    assert [c.status_code for c in claims] == [200, 200]
    assert [c.json()["id"] for c in claims] == [desk.case_of[1], desk.case_of[3]]
    assert [(c.json()["assignee"], c.json()["status"]) for c in claims] == [
        ("ana", "assigned"),
        ("bo", "assigned"),
    ]
    empty = desk.client.post("/v1/queues/general/claim-next", headers=desk.as_("ana"))
    assert empty.status_code == 404 and "no unassigned case" in empty.json()["detail"]

    desk.world.clock.advance(hours=2)  # the snoozed case wakes up
    woke = desk.client.post("/v1/queues/general/claim-next", headers=desk.as_("ana"))
    assert woke.status_code == 200 and woke.json()["id"] == desk.case_of[2]


def test_claim_next_needs_a_queue_of_ones_own(desk: Desk) -> None:
    unknown = desk.client.post("/v1/queues/nowhere/claim-next", headers=desk.as_("ana"))
    other = desk.client.post("/v1/queues/declines/claim-next", headers=desk.as_("ana"))
    assert (unknown.status_code, other.status_code) == (404, 404)
    assert unknown.json()["detail"].replace("nowhere", "declines") == other.json()["detail"]


def test_comments_appear_on_the_timeline_in_any_status(desk: Desk) -> None:
    case_id = desk.case_of[1]
    said = desk.client.post(
        f"/v1/cases/{case_id}/comments",
        json={"text": "  called the customer  "},
        headers=desk.as_("ana"),
    )
    assert said.status_code == 201
    assert (said.json()["type"], said.json()["data"]) == (
        "comment",
        {"text": "called the customer"},
    )
    desk.act("ana", case_id, action="resolve", disposition="legitimate")
    late = desk.client.post(
        f"/v1/cases/{case_id}/comments", json={"text": "card reissued"}, headers=desk.as_("bo")
    )
    assert late.status_code == 201
    for empty in ("", "   "):
        refused = desk.client.post(
            f"/v1/cases/{case_id}/comments", json={"text": empty}, headers=desk.as_("bo")
        )
        assert refused.status_code == 422
    timeline = desk.case("ana", case_id)["timeline"]
    assert [(e["type"], e["actor"]) for e in timeline] == [
        ("opened", "system"),
        ("comment", "ana"),
        ("resolve", "ana"),
        ("comment", "bo"),
    ]
    assert timeline[1]["data"] == {"text": "called the customer"}
    assert timeline[3]["data"] == {"text": "card reissued"}


def test_a_whole_life_through_the_api_with_an_audit_entry_for_each_action(desk: Desk) -> None:
    case_id = desk.case_of[1]
    steps: list[tuple[str, dict[str, Any], str]] = [
        ("ana", {"action": "claim"}, "assigned"),
        ("ana", {"action": "start"}, "investigating"),
        ("ana", {"action": "snooze", "until": future()}, "investigating"),
        ("ana", {"action": "escalate", "note": "needs a senior"}, "escalated"),
        ("sam", {"action": "assign", "assignee": "sam"}, "escalated"),
        ("sam", {"action": "start"}, "investigating"),
        ("sam", {"action": "unassign"}, "new"),
        ("sam", {"action": "assign", "assignee": "bo"}, "assigned"),
        ("bo", {"action": "resolve", "disposition": "inconclusive"}, "resolved"),
        ("bo", {"action": "reopen"}, "investigating"),
    ]
    assert {Action(body["action"]) for _, body, _ in steps} == set(Action)
    version = 1
    for username, body, status in steps:
        moved = desk.act(username, case_id, version=version, **body)
        assert moved.status_code == 200, (body, moved.text)
        assert moved.json()["status"] == status, body
        assert moved.json()["version"] == version + 1
        version += 1
    desk.client.post(f"/v1/cases/{case_id}/comments", json={"text": "done"}, headers=desk.as_("bo"))
    final = desk.case("bo", case_id)["case"]
    assert (final["assignee"], final["disposition"], final["resolved_at"]) == ("bo", None, None)

    entries = desk.world.identity.audit.read(AuditQuery(object_type="case", object_id=str(case_id)))
    recorded = [(e["actor"], e["action"]) for e in reversed(entries)]
    expected = [(u, f"case.{body['action']}") for u, body, _ in steps] + [("bo", "case.comment")]
    assert recorded == expected
    escalate = next(e for e in entries if e["action"] == "case.escalate")
    assert escalate["change"] == {
        "from": "investigating",
        "to": "escalated",
        "note": "needs a senior",
    }
    assert desk.world.identity.audit.verify() is None  # the hash chain holds


def test_claim_next_is_audited_and_on_the_timeline(desk: Desk) -> None:
    claimed = desk.client.post("/v1/queues/general/claim-next", headers=desk.as_("bo")).json()
    (entry,) = desk.world.identity.audit.read(AuditQuery(action="case.claim"))
    assert (entry["actor"], entry["object_id"]) == ("bo", str(claimed["id"]))
    assert entry["change"] == {"from": "new", "to": "assigned", "assignee": "bo"}
    timeline = desk.case("bo", claimed["id"])["timeline"]
    assert [e["type"] for e in timeline] == ["opened", "claim"]


def test_assigning_someone_else_needs_cases_assign(desk: Desk) -> None:
    case_id = desk.case_of[1]
    refused = desk.act("ana", case_id, action="assign", assignee="bo")
    assert refused.status_code == 403 and "cases:assign" in refused.json()["detail"]
    assert desk.act("ana", case_id, action="assign", assignee="ana").status_code == 200  # oneself
    given = desk.act("sam", case_id, action="assign", assignee="bo")
    assert given.status_code == 200 and given.json()["assignee"] == "bo"
    outsider = desk.world.add_user("cy", Role.ANALYST)  # in no queue
    refused = desk.act("sam", case_id, action="assign", assignee=outsider)
    assert refused.status_code == 403 and "not a member" in refused.json()["detail"]
    nobody = desk.act("sam", case_id, action="assign", assignee="nobody")
    assert nobody.status_code == 422 and "no active user" in nobody.json()["detail"]


def test_claiming_for_someone_else_needs_cases_assign_too(desk: Desk) -> None:
    """``claim`` with an assignee is an assignment: without cases:assign it is refused."""
    case_id = desk.case_of[1]
    refused = desk.act("ana", case_id, action="claim", assignee="bo")
    assert refused.status_code == 403 and "cases:assign" in refused.json()["detail"]
    assert desk.case("ana", case_id)["case"]["assignee"] is None
    assert desk.act("sam", case_id, action="claim", assignee="bo").json()["assignee"] == "bo"


def test_a_senior_takes_a_case_of_a_queue_they_are_not_in(desk: Desk) -> None:
    """cases:read-all: "see and work cases of every queue" — claiming one included."""
    desk.world.store.write([alert(50, 50, DAY, 20.0, 0.5, "decline")])
    desk.world.ingester().ingest_all()
    mine = desk.client.get("/v1/cases?queue=declines", headers=desk.as_("sam")).json()
    (declined,) = mine
    taken = desk.act("sam", declined["id"], action="claim")
    assert taken.status_code == 200, taken.text
    assert taken.json()["assignee"] == "sam"


def test_bulk_actions_need_cases_assign_and_report_each_case(desk: Desk) -> None:
    ids = [desk.case_of[c] for c in (1, 2, 3)]
    body = {"case_ids": ids, "action": "assign", "assignee": "bo"}
    refused = desk.client.post("/v1/cases/bulk", json=body, headers=desk.as_("ana"))
    assert refused.status_code == 403 and "cases:assign" in refused.json()["detail"]

    desk.act("ana", ids[2], action="resolve", disposition="legitimate")  # resolved: cannot assign
    missing = 999_999
    assigned = desk.client.post(
        "/v1/cases/bulk",
        json={**body, "case_ids": [*ids, missing, ids[0]]},
        headers=desk.as_("sam"),
    )
    assert assigned.status_code == 200
    results = assigned.json()
    assert list(results) == [str(i) for i in [*ids, missing]]  # each once, in order
    assert results[str(ids[0])] == results[str(ids[1])] == "ok"
    assert results[str(ids[2])].startswith("cannot assign a case that is resolved: allowed are")
    assert results[str(missing)] == f"no case {missing} in your queues"

    resolved = desk.client.post(
        "/v1/cases/bulk",
        json={"case_ids": ids[:2], "action": "resolve", "disposition": "confirmed-fraud"},
        headers=desk.as_("sam"),
    )
    assert resolved.json() == {str(ids[0]): "ok", str(ids[1]): "ok"}
    statuses = {desk.case("sam", i)["case"]["status"] for i in ids}
    assert statuses == {"resolved"}
    assert sorted(r.case_id for r in desk.resolved) == sorted(ids)
    no_disposition = desk.client.post(
        "/v1/cases/bulk", json={"case_ids": ids[:1], "action": "reopen"}, headers=desk.as_("sam")
    )
    assert no_disposition.json() == {str(ids[0]): "ok"}
    bulk_audit = desk.world.identity.audit.read(AuditQuery(actor="sam", object_type="case"))
    assert [e["action"] for e in reversed(bulk_audit)] == [
        "case.assign",
        "case.assign",
        "case.resolve",
        "case.resolve",
        "case.reopen",
    ]


def test_a_queue_lists_by_priority(desk: Desk) -> None:
    listed = desk.client.get("/v1/cases?queue=general", headers=desk.as_("ana")).json()
    assert [c["customer_id"] for c in listed] == [1, 2, 3]
    assert [c["priority"] for c in listed] == [90.0, 40.0, 10.0]
    queues = desk.client.get("/v1/queues", headers=desk.as_("ana")).json()
    assert [(q["name"], q["open_cases"], q["unassigned"]) for q in queues] == [("general", 3, 3)]
    assert queues[0]["members"] == ["ana", "bo", "sam"]


def test_the_service_refuses_the_same_as_the_api(desk: Desk) -> None:
    """CaseWork on its own (no HTTP): the errors the API maps."""
    work: CaseWork = desk.world.work
    ana = desk.world.principal("ana")
    case_id = desk.case_of[1]
    with pytest.raises(IllegalTransitionError):
        work.act(ana, case_id, Move(Action.REOPEN))
    with pytest.raises(VersionConflictError):
        work.act(ana, case_id, Move(Action.CLAIM, version=7))
    with pytest.raises(CaseNotFoundError):
        work.act(ana, 424242, Move(Action.CLAIM))
    assert work.act(ana, case_id, Move(Action.CLAIM)).assignee == "ana"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/v1/cases/{2**63}", None),
        ("GET", f"/v1/cases/{2**31}", None),
        ("POST", f"/v1/cases/{2**63}/comments", {"text": "x"}),
        ("POST", f"/v1/cases/{2**63}/actions", {"action": "claim"}),
        ("POST", "/v1/cases/1/actions", {"action": "claim", "version": 2**63}),
        ("POST", "/v1/cases/bulk", {"case_ids": [2**63], "action": "claim"}),
        ("GET", f"/v1/cases?customer_id={2**64}", None),
        ("GET", f"/v1/events?after={2**63}&timeout=0.01", None),
        ("GET", f"/v1/audit?before_id={2**63}", None),
    ],
)
def test_a_number_beyond_the_databases_integers_is_422_not_500(
    desk: Desk, method: str, path: str, body: Any
) -> None:
    answer = desk.client.request(method, path, json=body, headers=desk.as_("sam"))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("until", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"])
def test_a_wake_up_time_beyond_the_calendar_in_utc_is_422(desk: Desk, until: str) -> None:
    answer = desk.act("ana", desk.case_of[1], action="snooze", until=until)
    assert answer.status_code == 422 and "out of range" in answer.json()["detail"]


def test_a_value_the_database_refuses_is_422_without_the_sql(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL refuses a NUL in a text (``DataError``): the client's error, not the server's."""
    refused = ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes")

    def raising(*_args: Any) -> Any:
        raise sa.exc.DataError("SELECT cases.secret FROM cases", {}, refused)

    monkeypatch.setattr(queries, "list_cases", raising)
    answer = desk.client.get("/v1/cases", params={"queue": "a"}, headers=desk.as_("ana"))
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail == "a value of the request is refused: " + str(refused)
    assert "SELECT" not in detail
