"""The analysts' pages: queues by expected loss, claim next, the case page, start and resolve."""

from __future__ import annotations

import html
import json
import re

from fastapi.testclient import TestClient
from tests.unit.dashboard.pages import REASONS, Floor, csrf_of, sign_in

from fraudrisk.cases.queries import case_view


def case_links(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'href="/cases/(\d+)"', html)]


def test_a_queue_lists_cases_by_expected_loss_with_sla_countdowns(
    client: TestClient, floor: Floor
) -> None:
    sign_in(client, "ana")
    page = client.get("/queues/general").text
    assert case_links(page) == [floor.case_of[c] for c in (1, 2, 3)]
    assert "90.00" in page and "40.00" in page
    assert re.search(r"(due in|overdue by) \d", page)
    assert "data-remaining=" in page


def test_the_status_filter_narrows_the_list_and_answers_htmx_with_a_fragment(
    client: TestClient, floor: Floor
) -> None:
    sign_in(client, "ana")
    none = client.get("/queues/general?status=resolved").text
    assert case_links(none) == []
    fragment = client.get("/queues/general?status=new", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<table class="cases"')
    assert len(case_links(fragment.text)) == 3
    assert client.get("/queues/general?status=bogus").status_code == 422


def test_claim_next_takes_the_highest_expected_loss_and_my_queue_shows_it(
    client: TestClient, floor: Floor
) -> None:
    sign_in(client, "ana")
    token = csrf_of(client)
    claimed = client.post("/queues/general/claim-next", data={"csrf_token": token})
    assert claimed.url.path == f"/cases/{floor.case_of[1]}", (
        claimed.status_code,
        claimed.text[-1500:],
    )
    assert "assigned" in claimed.text
    assert case_links(client.get("/queue").text) == [floor.case_of[1]]


def test_claim_next_in_an_empty_queue_says_so(client: TestClient, floor: Floor) -> None:
    sign_in(client, "ana")
    token = csrf_of(client)
    for _ in range(3):
        client.post("/queues/general/claim-next", data={"csrf_token": token})
    empty = client.post("/queues/general/claim-next", data={"csrf_token": token})
    assert empty.url.path == "/queue"
    assert "No unassigned case is waiting" in empty.text


def test_start_and_resolve_a_case_from_its_page(client: TestClient, floor: Floor) -> None:
    sign_in(client, "ana")
    token = csrf_of(client)
    case_id = floor.case_of[1]
    client.post("/queues/general/claim-next", data={"csrf_token": token})
    started = client.post(
        f"/cases/{case_id}/actions", data={"action": "start", "csrf_token": token}
    )
    assert "investigating" in started.text
    version = re.search(r'name="version" value="(\d+)"', started.text)
    assert version is not None
    resolved = client.post(
        f"/cases/{case_id}/actions",
        data={
            "action": "resolve",
            "disposition": "confirmed-fraud",
            "note": "card testing",
            "version": version[1],
            "csrf_token": token,
        },
    )
    assert resolved.status_code == 200
    principal = floor.world.principal("ana")
    with floor.world.engine.connect() as connection:
        view = case_view(connection, principal, case_id, floor.world.clock())
    assert view.case.status == "resolved"
    assert view.case.disposition == "confirmed-fraud"
    assert "card testing" in resolved.text


def test_a_stale_version_is_a_409_page_naming_what_happened(
    client: TestClient, floor: Floor
) -> None:
    sign_in(client, "ana")
    token = csrf_of(client)
    case_id = floor.case_of[2]
    form = {"action": "claim", "version": "1", "csrf_token": token}
    assert client.post(f"/cases/{case_id}/actions", data=form).status_code == 200
    stale = client.post(f"/cases/{case_id}/actions", data={**form, "action": "start"})
    assert stale.status_code == 409
    assert "changed since version 1" in stale.text


def test_the_case_page_charts_the_reasons_beside_the_baseline_and_shows_activity(
    client: TestClient, floor: Floor
) -> None:
    sign_in(client, "ana")
    page = client.get(f"/cases/{floor.case_of[1]}").text
    chart = re.search(r"data-chart='([^']*)'", page)
    assert chart is not None
    option = json.loads(html.unescape(chart[1]))
    assert option["yAxis"]["data"] == list(REASONS)
    assert [s["name"] for s in option["series"]] == ["this case", "customer's usual"]
    assert "/static/vendor/echarts.min.js" in page
    assert "The customer's recent activity" in page
    assert "Alerted transactions" in page


def test_a_comment_is_added_to_the_timeline(client: TestClient, floor: Floor) -> None:
    sign_in(client, "ana")
    case_id = floor.case_of[3]
    added = client.post(
        f"/cases/{case_id}/comments",
        data={"text": "called the customer", "csrf_token": csrf_of(client)},
    )
    assert added.url.path == f"/cases/{case_id}"
    assert "called the customer" in added.text


def test_a_risk_manager_reads_cases_but_is_offered_no_work(
    client: TestClient, floor: Floor
) -> None:
    sign_in(client, "rita")
    assert "Claim next" not in client.get("/queues/general").text
    case_page = client.get(f"/cases/{floor.case_of[1]}").text
    assert "Work this case" not in case_page
    refused = client.post(
        "/queues/general/claim-next", data={"csrf_token": csrf_of(client, "/queues")}
    )
    assert refused.status_code == 403
