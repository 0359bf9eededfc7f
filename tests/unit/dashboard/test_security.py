"""The headers of every response, CSRF refusals, and no card number on any page."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from tests.unit.dashboard.pages import Floor, csrf_of, sign_in

from fraudrisk.cases.lifecycle import Status
from fraudrisk.dashboard.rendering import environment

PAN_LIKE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


@pytest.mark.parametrize("path", ["/login", "/queue", "/queues", "/admin/users", "/nope"])
def test_every_response_has_a_csp_without_unsafe_inline(client: TestClient, path: str) -> None:
    sign_in(client, "ana")
    answer = client.get(path)
    csp = answer.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"


def test_no_page_has_an_inline_script_or_style(client: TestClient, floor: Floor) -> None:
    sign_in(client, "ana")
    for path in ("/login", "/queue", "/queues/general", f"/cases/{floor.case_of[1]}"):
        html = client.get(path).text
        assert "<style" not in html and " style=" not in html, path
        for script in re.findall(r"<script[^>]*>", html):
            assert 'src="/static/' in script, (path, script)
        assert "http://" not in html and "https://" not in html, path  # no CDN, no other site


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/queues/general/claim-next", {}),
        ("/cases/{case}/actions", {"action": "claim"}),
        ("/cases/{case}/comments", {"text": "hello"}),
        ("/logout", {}),
        ("/logout-everywhere", {}),
    ],
)
def test_a_change_without_the_csrf_token_is_refused(
    client: TestClient, floor: Floor, path: str, data: dict[str, str]
) -> None:
    sign_in(client, "ana")
    target = path.format(case=floor.case_of[1])
    for token in ({}, {"csrf_token": "forged"}):
        refused = client.post(target, data={**data, **token}, follow_redirects=False)
        assert refused.status_code == 403, (target, refused.text)
    forged_header = client.post(target, data=data, headers={"X-CSRF-Token": "forged"})
    assert forged_header.status_code == 403
    case_page = client.get(f"/cases/{floor.case_of[1]}").text  # nothing changed
    assert "hello" not in case_page
    assert '<span class="status status-new">new</span>' in case_page
    assert client.get("/queue").status_code == 200  # still signed in


def test_the_csrf_header_htmx_sends_is_accepted(client: TestClient, floor: Floor) -> None:
    sign_in(client, "ana")
    token = csrf_of(client)
    case_id = floor.case_of[1]
    answer = client.post(
        f"/cases/{case_id}/comments",
        data={"text": "looks like a card test"},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert "looks like a card test" in answer.text
    assert "<html" not in answer.text  # a fragment for htmx to swap in


def test_a_card_number_is_redacted_wherever_a_template_prints_it() -> None:
    template = environment().from_string("{{ text }} {{ number }}")
    shown = template.render(text="card 4111 1111 1111 1111 used", number=4111111111111111)
    assert "4111" not in shown
    assert "redacted card number" in shown


def test_no_page_shows_pan_like_digits(client: TestClient, floor: Floor) -> None:
    sign_in(client, "sam")
    client.post(
        f"/cases/{floor.case_of[1]}/comments",
        data={"text": "customer read out 4111111111111111", "csrf_token": csrf_of(client)},
    )
    pages = ["/queue", "/queues", "/queues/general", f"/cases/{floor.case_of[1]}"]
    pages += [f"/queues/general?status={s.value}" for s in Status]
    for path in pages:
        html = client.get(path).text
        assert not PAN_LIKE.search(html), (path, PAN_LIKE.search(html))
