"""Signing in with the identity service's login, signing out, and signing out everywhere."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.unit.dashboard.pages import LOGIN_NONCE, Floor, csrf_of, dashboard, sign_in

from fraudrisk.dashboard.auth_pages import WRONG, safe_next


def test_a_totp_code_signs_in_and_the_cookie_is_the_service_s_session(
    client: TestClient, floor: Floor
) -> None:
    refused = sign_in(client, "totp")  # the password alone is not enough
    assert refused.status_code == 401
    signed = sign_in(client, "totp", floor.totp_code())
    assert signed.status_code == 303
    token = client.cookies.get("fraudrisk_session")
    assert token is not None
    assert floor.world.identity.sessions.authenticate(token).username == "totp"
    assert client.get("/queue").status_code == 200


def test_a_wrong_password_code_or_username_reads_the_same(client: TestClient, floor: Floor) -> None:
    answers = [
        sign_in(client, "totp", "000000"),
        sign_in(client, "totp", floor.totp_code(), password="wrong password"),
        sign_in(client, "nobody"),
    ]
    for answer in answers:
        assert answer.status_code == 401
        assert WRONG in answer.text
    assert client.cookies.get("fraudrisk_session") is None


def test_a_locked_account_says_until_when_and_refuses_the_right_password(
    client: TestClient,
) -> None:
    for _ in range(12):
        answer = sign_in(client, "ana", password="wrong password")
    assert answer.status_code == 423
    assert "locked until" in answer.text
    assert sign_in(client, "ana").status_code == 423


def test_sign_in_without_its_double_submit_value_is_refused(client: TestClient) -> None:
    client.get("/login")
    form = {"username": "ana", "password": "x", "csrf_token": "forged"}
    assert client.post("/login", data=form).status_code == 403


def test_the_next_page_is_kept_but_only_on_this_site(client: TestClient) -> None:
    page = client.get("/login?next=/queues/general")
    assert 'name="next" value="/queues/general"' in page.text
    signed = sign_in(client, "ana", next="/queues/general")
    assert signed.headers["location"] == "/queues/general"
    assert safe_next("//evil.example/") == "/"
    assert safe_next("https://evil.example/") == "/"


def test_sign_out_ends_the_session(client: TestClient, floor: Floor) -> None:
    sign_in(client, "ana")
    token = client.cookies["fraudrisk_session"]
    out = client.post("/logout", data={"csrf_token": csrf_of(client)}, follow_redirects=False)
    assert out.status_code == 303
    assert "You have signed out." in client.get(out.headers["location"]).text
    assert client.get("/queue", follow_redirects=False).status_code == 303
    client.cookies.set("fraudrisk_session", token)  # the old cookie is dead on the server
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_sign_out_everywhere_ends_every_session_of_the_person(
    client: TestClient, floor: Floor
) -> None:
    elsewhere = floor.world.login("ana")
    sign_in(client, "ana")
    client.post("/logout-everywhere", data={"csrf_token": csrf_of(client)})
    sessions = floor.world.identity.sessions
    assert not [t for t in sessions.tokens("ana") if t.kind == "session"]
    with TestClient(dashboard(floor.world)) as other:
        other.cookies.set("fraudrisk_session", elsewhere)
        assert other.get("/queue", follow_redirects=False).status_code == 303


def test_the_secure_cookie_is_host_prefixed_httponly_and_strict(floor: Floor) -> None:
    with TestClient(dashboard(floor.world, secure=True), base_url="https://testserver") as client:
        signed = sign_in(client, "ana")
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith("__Host-fraudrisk_session=")
        for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
            assert flag.lower() in cookie.lower(), cookie
        assert "strict-transport-security" in signed.headers


def test_the_login_form_has_labels_for_each_field(client: TestClient) -> None:
    page = client.get("/login").text
    for field in ("username", "password", "code"):
        assert f'<label for="{field}"' in page
        assert f'id="{field}"' in page
    assert LOGIN_NONCE.search(page)
