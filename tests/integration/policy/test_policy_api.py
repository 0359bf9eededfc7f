"""The policy routes of the case API, served by uvicorn, on a real PostgreSQL database.

Four eyes over HTTP: each person acts with their own session; the author cannot approve their
own version (403), a step the status does not allow is 409 naming the allowed steps, an
unknown version 404, a text that does not type-check 422 with every error positioned; every
step is in the audit log under the caller's name, and the chain verifies.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest
from tests.support.asgi import serve_in_thread
from tests.unit.cases.case_doubles import CaseWorld, fast_argon2, world
from tests.unit.policy.desk import LOWER, POLICY

from fraudrisk.cases.api import create_app
from fraudrisk.identity.roles import Role
from fraudrisk.policy.linting import policy_environment, policy_versions

pytestmark = pytest.mark.integration

PEOPLE = {
    "rita": Role.RISK_MANAGER,
    "rob": Role.RISK_MANAGER,
    "ana": Role.ANALYST,
    "max": Role.MLOPS_ENGINEER,
}


@pytest.fixture()
def database(postgres_server: str) -> Iterator[str]:
    """The URL of a database of its own (dropped after the test)."""
    name = f"policy_api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_server.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


class Desk:
    """The served case API and one HTTP client per person (their own session)."""

    def __init__(self, made: CaseWorld, base: str) -> None:
        self.made, self.base = made, base

    def as_(self, username: str) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=self.made.bearer(username), timeout=30)

    def call(
        self, username: str, method: str, path: str, body: Any = None, **params: str
    ) -> httpx.Response:
        with self.as_(username) as client:
            return client.request(method, path, json=body, params=params)


@pytest.fixture()
def desk(database: str) -> Iterator[Desk]:
    with fast_argon2():
        made = world(database)
        for name, role in PEOPLE.items():
            made.add_user(name, role)
        queues = [queue.name for queue in made.rules.queues]
        versions = policy_versions(made.engine, policy_environment(queues), made.clock)
        services = replace(made.services, policies=versions)
        with serve_in_thread(create_app(services)) as base:
            yield Desk(made, base)
        made.close()


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    return body


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def test_four_eyes_over_http(desk: Desk) -> None:
    drafted = ok(desk.call("rita", "POST", "/v1/policies", {"text": POLICY, "note": "v1"}), 201)
    assert (drafted["number"], drafted["name"], drafted["status"]) == (1, "desk", "draft")
    assert drafted["author"] == "rita" and drafted["text"] == POLICY

    early = problem(desk.call("rob", "POST", "/v1/policies/1/approve"), 409)
    assert early["allowed"] == ["submit"] and "it is draft" in early["detail"]
    assert ok(desk.call("rita", "POST", "/v1/policies/1/submit"))["status"] == "pending"
    own = problem(desk.call("rita", "POST", "/v1/policies/1/approve"), 403)
    assert "ask another risk manager to approve it" in own["detail"]
    analyst = problem(desk.call("ana", "POST", "/v1/policies/1/approve"), 403)
    assert "policy:approve" in analyst["detail"]
    assert (
        "policy:author"
        in problem(desk.call("max", "POST", "/v1/policies", {"text": POLICY}), 403)["detail"]
    )
    assert problem(desk.call("ana", "GET", "/v1/policies"), 403)["title"] == "Forbidden"
    assert problem(desk.call("rob", "GET", "/v1/policies/active"), 404)["detail"] == (
        "no policy version is active yet"
    )

    approved = ok(desk.call("rob", "POST", "/v1/policies/1/approve", {"note": "backtest ok"}))
    assert (approved["status"], approved["approver"]) == ("approved", "rob")
    assert ok(desk.call("rob", "POST", "/v1/policies/1/activate"))["status"] == "active"
    active = ok(desk.call("max", "GET", "/v1/policies/active"))  # mlops may read
    assert (active["number"], active["text"]) == (1, POLICY)


def activate(desk: Desk, text: str) -> int:
    """A version by rita, approved by rob, activated by rob; its number."""
    number = int(ok(desk.call("rita", "POST", "/v1/policies", {"text": text}), 201)["number"])
    for who, step in (("rita", "submit"), ("rob", "approve"), ("rob", "activate")):
        ok(desk.call(who, "POST", f"/v1/policies/{number}/{step}"))
    return number


def test_rollback_diff_and_list(desk: Desk) -> None:
    first, second = activate(desk, POLICY), activate(desk, LOWER)
    listed = ok(desk.call("rob", "GET", "/v1/policies"))
    assert [(v["number"], v["status"]) for v in listed] == [(2, "active"), (1, "retired")]
    assert "text" not in listed[0]
    diff = ok(desk.call("rob", "GET", f"/v1/policies/{first}/diff/{second}"))
    assert diff["diff"].startswith("--- v1\n+++ v2\n")
    assert "+thresholds: {review: 0.08, decline: 0.9}" in diff["diff"]

    again = problem(desk.call("rob", "POST", "/v1/policies/rollback", {"to": second}), 409)
    assert "it is active" in again["detail"] and again["allowed"] == []
    body = {"to": first, "note": "v2 reviews too much"}
    back = ok(desk.call("rita", "POST", "/v1/policies/rollback", body))
    assert (back["number"], back["status"], back["activated_by"]) == (1, "active", "rita")
    retired = ok(desk.call("rob", "GET", "/v1/policies", status="retired"))
    assert [v["number"] for v in retired] == [second]
    assert problem(desk.call("rob", "GET", "/v1/policies/99"), 404)["detail"] == (
        "no policy version 99"
    )
    assert problem(desk.call("rob", "POST", "/v1/policies/99/submit"), 404)["title"] == "Not Found"


def test_a_text_that_does_not_type_check_is_422_with_every_error_positioned(desk: Desk) -> None:
    bad = POLICY.replace("amount >= 250", 'amount >= "big"').replace("high-value", "nowhere")
    refused = problem(desk.call("rita", "POST", "/v1/policies", {"text": bad}), 422)
    assert refused["errors"] == [
        "policy.yaml:5:33: '>=' compares numbers; text compares with '==', '!=' or 'in'",
        "policy.yaml:5:62: rule 'big': queue: unknown queue 'nowhere' "
        "(queues: declines, general, high-value, missed-fraud)",
    ]
    assert ok(desk.call("rob", "GET", "/v1/policies")) == []


def test_every_step_is_audited_under_the_callers_name(desk: Desk) -> None:
    number = activate(desk, POLICY)
    ok(desk.call("rita", "POST", "/v1/policies", {"text": LOWER, "based_on": number}), 201)
    ok(desk.call("rita", "POST", "/v1/policies/2/submit", {"note": "lower review"}))
    ok(desk.call("rob", "POST", "/v1/policies/2/reject", {"note": "too many reviews"}))
    entries = ok(desk.call("rita", "GET", "/v1/audit", object_type="policy"))
    steps = [(e["actor"], e["action"], e["object_id"]) for e in reversed(entries)]
    assert steps == [
        ("rita", "policy.draft", "1"),
        ("rita", "policy.submit", "1"),
        ("rob", "policy.approve", "1"),
        ("rob", "policy.activate", "1"),
        ("rita", "policy.draft", "2"),
        ("rita", "policy.submit", "2"),
        ("rob", "policy.reject", "2"),
    ]
    assert {e["source"] for e in entries} == {"127.0.0.1"}
    assert entries[0]["change"]["note"] == "too many reviews"
    assert desk.made.identity.audit.verify() is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/policies"),
        ("GET", "/v1/policies/active"),
        ("GET", "/v1/policies/1"),
        ("GET", "/v1/policies/1/diff/1"),
        ("POST", "/v1/policies"),
        ("POST", "/v1/policies/1/submit"),
        ("POST", "/v1/policies/1/approve"),
        ("POST", "/v1/policies/1/reject"),
        ("POST", "/v1/policies/1/activate"),
        ("POST", "/v1/policies/rollback"),
    ],
)
def test_without_a_token_every_policy_route_is_401(desk: Desk, method: str, path: str) -> None:
    with httpx.Client(base_url=desk.base, timeout=30) as client:
        answer = client.request(method, path, json={"text": POLICY, "to": 1})
    assert problem(answer, 401)["title"] == "Unauthorized"
