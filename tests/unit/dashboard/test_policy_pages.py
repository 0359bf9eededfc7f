"""The policy pages: versions, diff and history, four eyes, lint errors, who may see and act."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.unit.dashboard.pages import Floor, csrf_of, sign_in
from tests.unit.policy.desk import LOWER, POLICY

from fraudrisk.identity.roles import Role
from fraudrisk.policy.linting import policy_versions
from fraudrisk.policy.versions import PolicyVersions

BROKEN = POLICY.replace("when: amount >= 250", "when: amount >= ") + (
    "  - {name: odd, when: nosuch > 3, action: decline, reason: Odd}\n"
)
POSITIONED = re.compile(r"policy\.yaml:\d+:\d+: ")


@pytest.fixture()
def versions(floor: Floor) -> PolicyVersions:
    """The world's policy versions, with a second risk manager (rob)."""
    floor.world.add_user("rob", Role.RISK_MANAGER)
    return policy_versions(floor.world.engine, clock=floor.world.clock)


def active_and_draft(floor: Floor, versions: PolicyVersions) -> tuple[int, int]:
    """v1 drafted by rita, approved by rob and active; v2 (lower review) rita's draft."""
    rita, rob = floor.world.principal("rita"), floor.world.principal("rob")
    first = versions.draft(rita, "desk", POLICY).number
    versions.submit(rita, first)
    versions.approve(rob, first, "looks right")
    versions.activate(rob, first)
    return first, versions.draft(rita, "desk", LOWER, "lower review").number


def post(client: TestClient, path: str, **data: str) -> Any:
    token = csrf_of(client, "/policies")
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


def test_the_list_shows_versions_newest_first_and_marks_the_active_one(
    client: TestClient, floor: Floor, versions: PolicyVersions
) -> None:
    first, second = active_and_draft(floor, versions)
    sign_in(client, "rita")
    page = client.get("/policies")
    assert page.status_code == 200
    assert page.text.index(f'href="/policies/{second}"') < page.text.index(
        f'href="/policies/{first}"'
    )
    assert "(in force)" in page.text and "status-active" in page.text
    assert "<td>rob</td>" in page.text  # the approver
    assert 'href="/policies/new"' in page.text


def test_a_version_page_shows_the_text_the_diff_the_history_and_the_steps(
    client: TestClient, floor: Floor, versions: PolicyVersions
) -> None:
    first, second = active_and_draft(floor, versions)
    sign_in(client, "rita")
    page = client.get(f"/policies/{second}")
    assert page.status_code == 200
    assert f"Changes from v{first}" in page.text
    assert '<span class="del">-thresholds: {review: 0.1, decline: 0.9}</span>' in page.text
    assert '<span class="add">+thresholds: {review: 0.08, decline: 0.9}</span>' in page.text
    assert "alert_budget: 20" in page.text  # the YAML text
    assert "<strong>draft</strong> by rita" in page.text
    assert "<dd>lower review</dd>" in page.text  # the note
    assert f'action="/policies/{second}/submit"' in page.text  # the author's draft
    history = client.get(f"/policies/{first}").text
    assert "<strong>approve</strong> by rob: looks right" in history
    assert "<strong>activate</strong> by rob" in history
    assert "/submit" not in history and "/approve" not in history  # nothing left to do


def test_submit_is_offered_to_the_author_only(
    client: TestClient, floor: Floor, versions: PolicyVersions
) -> None:
    _first, second = active_and_draft(floor, versions)
    sign_in(client, "rob")
    assert f'action="/policies/{second}/submit"' not in client.get(f"/policies/{second}").text


@pytest.mark.parametrize("username", ["ana", "sam"])
def test_a_role_without_policy_read_gets_403_by_url_and_no_link(
    client: TestClient, floor: Floor, versions: PolicyVersions, username: str
) -> None:
    first, _second = active_and_draft(floor, versions)
    sign_in(client, username)
    assert 'href="/policies"' not in client.get("/queue").text
    for path in ("/policies", f"/policies/{first}", "/policies/new"):
        refused = client.get(path)
        assert refused.status_code == 403, path
        assert "policy:read" in refused.text
    token = csrf_of(client)
    step = client.post(f"/policies/{first}/approve", data={"csrf_token": token})
    assert step.status_code == 403


def test_a_reader_without_policy_author_sees_no_draft_form(
    client: TestClient, floor: Floor, versions: PolicyVersions
) -> None:
    first, _second = active_and_draft(floor, versions)
    sign_in(client, "mo")  # mlops: policy:read only
    assert client.get(f"/policies/{first}").status_code == 200
    assert 'href="/policies/new"' not in client.get("/policies").text
    refused = client.get("/policies/new")
    assert refused.status_code == 403
    assert "policy:author" in refused.text


def test_a_step_without_the_csrf_token_is_refused(
    client: TestClient, floor: Floor, versions: PolicyVersions
) -> None:
    _first, second = active_and_draft(floor, versions)
    sign_in(client, "rita")
    for data in ({}, {"csrf_token": "forged"}):
        refused = client.post(f"/policies/{second}/submit", data=data, follow_redirects=False)
        assert refused.status_code == 403
    refused = client.post("/policies", data={"text": POLICY}, follow_redirects=False)
    assert refused.status_code == 403
    assert versions.get(second).status.value == "draft"
    assert len(versions.list()) == 2


def test_the_authors_own_approval_is_refused_with_the_four_eyes_rule(
    client: TestClient, floor: Floor, versions: PolicyVersions
) -> None:
    _first, second = active_and_draft(floor, versions)
    sign_in(client, "rita")
    assert post(client, f"/policies/{second}/submit").status_code == 303
    page = client.get(f"/policies/{second}")
    assert "another risk manager must approve it (four eyes)" in page.text
    refused = post(client, f"/policies/{second}/approve")
    assert refused.status_code == 403
    assert "may not approve it (four eyes)" in refused.text
    assert versions.get(second).status.value == "pending"


def test_another_risk_manager_approves_and_activates(
    client: TestClient, floor: Floor, versions: PolicyVersions
) -> None:
    first, second = active_and_draft(floor, versions)
    versions.submit(floor.world.principal("rita"), second)
    sign_in(client, "rob")
    approved = post(client, f"/policies/{second}/approve", note="ok")
    assert approved.headers["location"] == f"/policies/{second}?done=approved"
    assert "Version 2 approved." in client.get(f"/policies/{second}?done=approved").text
    assert post(client, f"/policies/{second}/activate").status_code == 303
    assert versions.get(second).status.value == "active"
    assert versions.get(first).status.value == "retired"


def test_a_step_out_of_order_is_a_409_naming_the_allowed_steps(
    client: TestClient, floor: Floor, versions: PolicyVersions
) -> None:
    _first, second = active_and_draft(floor, versions)
    sign_in(client, "rob")
    refused = post(client, f"/policies/{second}/activate")
    assert refused.status_code == 409
    assert "cannot activate version 2: it is draft (allowed: submit)" in refused.text
    assert client.get("/policies/99").status_code == 404


def test_a_draft_with_lint_errors_is_shown_with_positions_and_not_stored(
    client: TestClient, floor: Floor, versions: PolicyVersions
) -> None:
    sign_in(client, "rita")
    assert client.get("/policies/new").status_code == 200
    refused = post(client, "/policies", text=BROKEN, note="try")
    assert refused.status_code == 422
    html = refused.text
    errors = re.findall(r"<li><code>([^<]*)</code></li>", html)
    assert len(errors) == 2 and all(POSITIONED.match(e) for e in errors), errors
    assert errors[0].startswith("policy.yaml:5:32: expected a value")
    assert "policy.yaml:6:23: unknown field &#39;nosuch&#39;" in html
    assert "nosuch &gt; 3" in html  # the text is kept in the form beside its errors
    assert versions.list() == []


def test_a_clean_draft_is_stored_and_shown(
    client: TestClient, floor: Floor, versions: PolicyVersions
) -> None:
    sign_in(client, "rita")
    stored = post(client, "/policies", text=POLICY, note="first")
    assert stored.status_code == 303
    (only,) = versions.list()
    assert (only.name, only.author, only.note) == ("desk", "rita", "first")
    assert stored.headers["location"] == f"/policies/{only.number}?done=drafted"
    assert "Version 1 drafted." in client.get(f"/policies/{only.number}?done=drafted").text


def test_the_policy_pages_have_no_inline_script_or_style(
    client: TestClient, floor: Floor, versions: PolicyVersions
) -> None:
    _first, second = active_and_draft(floor, versions)
    sign_in(client, "rita")
    for path in ("/policies", f"/policies/{second}", "/policies/new"):
        answer = client.get(path)
        assert "unsafe-inline" not in answer.headers["content-security-policy"]
        assert "<style" not in answer.text and " style=" not in answer.text, path
        for script in re.findall(r"<script[^>]*>", answer.text):
            assert 'src="/static/' in script, (path, script)
