"""Who sees what: the navigation shows only permitted pages, and a URL does not get around it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.unit.dashboard.pages import Floor, sign_in

from fraudrisk.dashboard.nav import LINKS

CASE_PAGES = ("/queue", "/queues", "/queues/general")


def nav_of(html: str) -> str:
    return html.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]


@pytest.mark.parametrize("username", ["ana", "sam", "rita", "adm"])
def test_the_case_pages_render_for_the_roles_that_read_cases(
    client: TestClient, floor: Floor, username: str
) -> None:
    assert sign_in(client, username).status_code == 303
    for path in CASE_PAGES:
        page = client.get(path)
        assert page.status_code == 200, (path, page.text)
        assert "text/html" in page.headers["content-type"]
    case_page = client.get(f"/cases/{floor.case_of[1]}")
    assert case_page.status_code == 200
    assert "Reason codes beside the customer" in case_page.text


@pytest.mark.parametrize("username", ["ana", "sam", "rita", "mo", "adm"])
def test_the_nav_shows_exactly_the_links_the_role_permits(
    client: TestClient, floor: Floor, username: str
) -> None:
    sign_in(client, username)
    principal = floor.world.identity.sessions.authenticate(floor.world.login(username))
    page = client.get("/", follow_redirects=True)
    assert page.status_code == 200
    nav = nav_of(page.text)
    for link in LINKS:
        shown = f'href="{link.path}"' in nav
        assert shown == principal.can(link.permission), (username, link.path)


@pytest.mark.parametrize("username", ["ana", "sam", "rita", "mo"])
def test_an_admin_page_by_url_is_a_403_page_for_other_roles(
    client: TestClient, username: str
) -> None:
    sign_in(client, username)
    refused = client.get("/admin/users")
    assert refused.status_code == 403
    assert "Not allowed" in refused.text
    assert "users:manage" in refused.text
    assert 'href="/admin/users"' not in refused.text  # nor its link in the nav


def test_the_admin_sees_the_users_page(client: TestClient) -> None:
    sign_in(client, "adm")
    page = client.get("/admin/users")
    assert page.status_code == 200
    assert "<td>ana</td>" in page.text


@pytest.mark.parametrize("path", [*CASE_PAGES, "/cases/1"])
def test_a_role_without_cases_read_gets_403_for_the_case_pages(
    client: TestClient, path: str
) -> None:
    sign_in(client, "mo")
    assert client.get(path).status_code == 403


def test_a_case_outside_ones_queues_is_a_404_page(client: TestClient, floor: Floor) -> None:
    floor.world.add_user("eve", "analyst")  # in no queue
    sign_in(client, "eve")
    answer = client.get(f"/cases/{floor.case_of[1]}")
    assert answer.status_code == 404
    assert "Not found" in answer.text
    assert client.get("/no-such-page").status_code == 404


@pytest.mark.parametrize("path", ["/", "/queue", "/queues/general", "/admin/users"])
def test_without_a_session_every_page_goes_to_the_sign_in(client: TestClient, path: str) -> None:
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")
