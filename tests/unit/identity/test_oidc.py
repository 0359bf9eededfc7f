"""Corporate login (OIDC) through the case API, against an in-process identity provider.

The provider (:class:`FakeProvider`) answers discovery, its key set, the token endpoint
(client secret, single-use codes, PKCE S256 checked) and userinfo through an
``httpx.MockTransport``; its "login page" is :meth:`FakeProvider.authorize`. Each check of the
callback is shown failing on a token or a callback broken in exactly that way — the wrong
nonce, an expired token, another audience or issuer, a tampered signature, another key, a
forged algorithm — after the same flow unbroken succeeded. The real provider (npm's
``oidc-provider``) is in ``tests/integration/identity/test_oidc_provider.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import shutil
import time
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from tests.unit.identity.test_sessions import ADMIN, PASSWORD, Clock, fast_argon2, make_identity

from fraudrisk.cases.api import CaseServices, create_app
from fraudrisk.cases.work import CaseWork
from fraudrisk.config import IdentitySettings, OidcRole, OidcSettings, Settings
from fraudrisk.identity import oidc
from fraudrisk.identity.audit import AuditQuery
from fraudrisk.identity.errors import LoginError
from fraudrisk.identity.oidc import OidcLogin, check_url, role_for
from fraudrisk.identity.roles import Role
from fraudrisk.identity.service import Identity
from fraudrisk.identity.tables import TOKENS, USERS
from fraudrisk.io.database import open_database

ISSUER = "https://idp.example.test/pool-1"
CLIENT_ID, CLIENT_SECRET = "cases-app", "client-secret-never-logged"
REDIRECT = "https://cases.example.test/v1/auth/oidc/callback"
COOKIE_PATH = "/v1/auth/oidc/callback"
GROUP_ROLES: dict[str, OidcRole] = {
    "fraud-admins": "admin",
    "fraud-seniors": "senior-analyst",
    "fraud-analysts": "analyst",
}
Claims = dict[str, Any]


def settings(**overrides: Any) -> OidcSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_url": REDIRECT,
        "group_roles": GROUP_ROLES,
    }
    return OidcSettings.model_validate(values | overrides)


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY, OTHER_KEY = new_key(), new_key()


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Grant:
    """What the provider remembers of an authorization request, under its code."""

    login: str
    nonce: str
    challenge: str
    redirect_uri: str


@dataclass
class FakeProvider:
    """An OIDC provider in process: discovery, JWKS, token, userinfo (a MockTransport)."""

    people: dict[str, Claims] = field(default_factory=dict)
    key: rsa.RSAPrivateKey = KEY
    kid: str = "key-1"
    grants: dict[str, Grant] = field(default_factory=dict)
    #: Rewrites the claims of the next ID tokens (a broken provider, an attacker's token).
    edit_claims: Callable[[Claims], Claims] = lambda claims: claims
    #: Rewrites the signed ID token (tampering, another key, a forged algorithm).
    edit_token: Callable[[str, Claims], str] = lambda token, _claims: token
    userinfo: Callable[[str], Claims] | None = None
    down: bool = False
    issuer_said: str = ISSUER
    calls: list[str] = field(default_factory=list)

    def add(self, login: str, *groups: str, **claims: Any) -> None:
        self.people[login] = {
            "sub": f"sub-{login}",
            "preferred_username": login,
            "name": login.title(),
            "groups": list(groups),
            **claims,
        }

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        routes: dict[str, Callable[[httpx.Request], httpx.Response]] = {
            "/pool-1/.well-known/openid-configuration": self.discovery,
            "/pool-1/jwks": self.jwks,
            "/oauth2/token": self.token,
            "/oauth2/userInfo": self.user_info,
        }
        return routes.get(request.url.path, lambda _r: httpx.Response(404))(request)

    def discovery(self, _request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "issuer": self.issuer_said,
                "authorization_endpoint": "https://login.example.test/oauth2/authorize",
                "token_endpoint": "https://login.example.test/oauth2/token",
                "jwks_uri": f"{ISSUER}/jwks",
                "userinfo_endpoint": "https://login.example.test/oauth2/userInfo",
                "id_token_signing_alg_values_supported": ["RS256"],
            },
        )

    def jwks(self, _request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": [public_jwk(self.key, self.kid)]})

    def authorize(self, url: str, login: str) -> str:
        """The provider's login page: the person signs in; the redirect back, with a code."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert url.startswith("https://login.example.test/oauth2/authorize?")
        assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
        assert query["code_challenge_method"] == "S256"
        assert "openid" in query["scope"].split()
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(
            login, query["nonce"], query["code_challenge"], query["redirect_uri"]
        )
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"

    def token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return httpx.Response(401, json={"error": "invalid_client"})
        grant = self.grants.pop(form.get("code", ""), None)  # a code works once
        if grant is None or form.get("redirect_uri") != grant.redirect_uri:
            return httpx.Response(400, json={"error": "invalid_grant"})
        if b64(hashlib.sha256(form["code_verifier"].encode()).digest()) != grant.challenge:
            return httpx.Response(400, json={"error": "invalid_grant"})  # PKCE
        now = int(time.time())
        claims = {
            **self.people[grant.login],
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
        }
        claims = self.edit_claims(claims)
        signed = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        access = f"access-{grant.login}"
        body = {"id_token": self.edit_token(signed, claims), "access_token": access}
        return httpx.Response(200, json=body)

    def user_info(self, request: httpx.Request) -> httpx.Response:
        login = request.headers["authorization"].removeprefix("Bearer access-")
        if self.userinfo is None:
            return httpx.Response(404)
        return httpx.Response(200, json=self.userinfo(login))


@dataclass
class World:
    engine: Engine
    identity: Identity
    clock: Clock
    idp: FakeProvider
    client: TestClient

    def login(self, who: str, **query: str) -> httpx.Response:
        """The browser's round trip: our redirect, the provider's login page, our callback."""
        start = self.client.get("/v1/auth/oidc/login", follow_redirects=False)
        assert start.status_code == 302, start.text
        return self.callback(self.idp.authorize(start.headers["location"], who), **query)

    def callback(self, back: str, **query: str) -> httpx.Response:
        """The provider's redirect back, followed by the browser (with its cookies)."""
        parts = urlsplit(back)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT
        params = {k: v[0] for k, v in parse_qs(parts.query).items()} | query
        return self.client.get("/v1/auth/oidc/callback", params=params)

    def me(self, token: str) -> httpx.Response:
        return self.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})

    def audit(self, action: str) -> list[dict[str, Any]]:
        return self.identity.audit.read(AuditQuery(action=action))

    def users(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.select(USERS).order_by(USERS.c.id)))


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oidc-template") / "app.db"
    open_database(f"sqlite:///{path}").dispose()
    return path


def make_world(path: Path, idp: FakeProvider, **overrides: Any) -> Iterator[World]:
    engine = open_database(f"sqlite:///{path}", migrate=False)
    clock = Clock()
    identity = make_identity(engine, clock)
    login = OidcLogin(settings(**overrides), identity.sessions, http=idp.client())
    services = CaseServices(
        engine, identity, CaseWork(engine, clock=clock), clock=clock, oidc=login
    )
    with fast_argon2(), TestClient(create_app(services), base_url="https://testserver") as client:
        yield World(engine, identity, clock, idp, client)
    engine.dispose()


@pytest.fixture()
def idp() -> FakeProvider:
    provider = FakeProvider()
    provider.add("ana", "fraud-analysts")
    provider.add("sam", "fraud-seniors", "fraud-analysts")
    provider.add("bob", "marketing")
    return provider


@pytest.fixture()
def world(template_db: Path, tmp_path: Path, idp: FakeProvider) -> Iterator[World]:
    shutil.copyfile(template_db, tmp_path / "app.db")
    yield from make_world(tmp_path / "app.db", idp)


# --- the flow that works ---------------------------------------------------------------------


def test_a_login_provisions_the_user_and_opens_a_session(world: World) -> None:
    start = world.client.get("/v1/auth/oidc/login", follow_redirects=False)
    cookie = start.headers["set-cookie"]
    assert cookie.startswith(f"{oidc.COOKIE}=")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/v1/auth/oidc/callback"):
        assert attribute in cookie, cookie
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["redirect_uri"] == [REDIRECT] and len(query["code_challenge"][0]) == 43

    answer = world.login("ana")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    token = answer.json()["token"]
    assert token.startswith("frs_")
    assert world.me(token).json()["role"] == "analyst"
    (user,) = world.users()
    assert (user.username, user.source, user.role) == ("ana", "oidc", "analyst")
    assert (user.external_issuer, user.external_subject) == (ISSUER, "sub-ana")
    assert user.password_hash is None and user.totp_secret is None and not user.mfa_required
    (provisioned,) = world.audit("user.provision")
    assert provisioned["actor"] == "ana" and provisioned["change"]["source"] == "oidc"
    (logged_in,) = world.audit("login.oidc")
    assert logged_in["change"] == {"issuer": ISSUER, "role": "analyst", "group": "fraud-analysts"}
    assert world.identity.audit.verify() is None


def test_the_session_is_a_normal_one(world: World) -> None:
    token = world.login("ana").json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert world.client.post("/v1/auth/logout", headers=headers).status_code == 204
    assert world.me(token).status_code == 401
    with world.engine.connect() as connection:
        (row,) = connection.execute(sa.select(TOKENS))
    assert (row.kind, row.name) == ("session", "oidc") and row.revoked_at is not None


def test_the_role_follows_the_groups_on_every_login(world: World) -> None:
    assert world.me(world.login("ana").json()["token"]).json()["role"] == "analyst"
    world.idp.people["ana"]["groups"] = ["fraud-admins"]
    world.idp.people["ana"]["preferred_username"] = "ana.b"
    token = world.login("ana").json()["token"]
    assert world.me(token).json() | {"permissions": []} == {
        "username": "ana.b",
        "role": "admin",
        "permissions": [],
    }
    (user,) = world.users()  # the same user, found by issuer and subject
    assert (user.username, user.role) == ("ana.b", "admin")
    (synced,) = world.audit("user.oidc-sync")
    assert synced["change"]["role"] == ["analyst", "admin"]
    assert synced["change"]["username"] == ["ana", "ana.b"]


def test_in_several_groups_the_first_of_the_mapping_wins(
    template_db: Path, tmp_path: Path, idp: FakeProvider
) -> None:
    assert role_for(["fraud-analysts", "fraud-seniors"], GROUP_ROLES) == (
        Role.SENIOR_ANALYST,
        "fraud-seniors",
    )
    reversed_roles = dict(reversed(GROUP_ROLES.items()))
    assert role_for(["fraud-analysts", "fraud-seniors"], reversed_roles) == (
        Role.ANALYST,
        "fraud-analysts",
    )
    shutil.copyfile(template_db, tmp_path / "app.db")
    for made in make_world(tmp_path / "app.db", idp, group_roles=reversed_roles):
        assert made.me(made.login("sam").json()["token"]).json()["role"] == "analyst"


def test_the_groups_claim_and_username_claim_are_settings(
    template_db: Path, tmp_path: Path, idp: FakeProvider
) -> None:
    """Cognito's claims: ``cognito:username`` and ``cognito:groups`` (a list, or one name)."""
    idp.add("carla", **{"cognito:username": "carla-c", "cognito:groups": "fraud-seniors"})
    shutil.copyfile(template_db, tmp_path / "app.db")
    cognito = {"username_claim": "cognito:username", "groups_claim": "cognito:groups"}
    for made in make_world(tmp_path / "app.db", idp, **cognito):
        me = made.me(made.login("carla").json()["token"]).json()
        assert (me["username"], me["role"]) == ("carla-c", "senior-analyst")


def test_claims_missing_from_the_id_token_come_from_userinfo(world: World) -> None:
    world.idp.edit_claims = lambda claims: {k: v for k, v in claims.items() if k != "groups"}
    world.idp.userinfo = lambda login: {"sub": f"sub-{login}", "groups": ["fraud-seniors"]}
    assert world.me(world.login("ana").json()["token"]).json()["role"] == "senior-analyst"

    world.idp.userinfo = lambda login: {"sub": "someone-else", "groups": ["fraud-admins"]}
    refused = world.login("ana")  # another subject's userinfo is ignored: no groups, no role
    assert refused.status_code == 403
    assert "GET /oauth2/userInfo" in world.idp.calls


def test_a_rotated_key_is_fetched_again(world: World) -> None:
    assert world.login("ana").status_code == 200
    world.idp.key, world.idp.kid = OTHER_KEY, "key-2"
    assert world.login("ana").status_code == 200
    assert world.idp.calls.count("GET /pool-1/jwks") == 2
    assert world.idp.calls.count("GET /pool-1/.well-known/openid-configuration") == 1


# --- refusals: 403 for the person, 401 for the proof ------------------------------------------


def problem_of(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status
    return typing.cast(str, body["detail"])


def test_no_mapped_group_is_refused_with_a_clear_problem(world: World) -> None:
    detail = problem_of(world.login("bob"), 403)
    assert detail == (
        "none of your groups at the identity provider (marketing) gives a role here: "
        "ask an admin to map one (identity.oidc.group_roles)"
    )
    assert world.users() == []
    (refused,) = world.audit("login.oidc.refused")
    assert refused["actor"] == "bob" and refused["change"]["reason"] == detail


def test_a_disabled_user_stays_disabled(world: World) -> None:
    token = world.login("ana").json()["token"]
    world.identity.accounts.disable(ADMIN, "ana")
    assert world.me(token).status_code == 401
    detail = problem_of(world.login("ana"), 403)
    assert detail == "the account 'ana' is disabled: ask an admin"
    (user,) = world.users()
    assert user.disabled
    with world.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(TOKENS)).scalar() == 1
    assert [e["change"]["reason"] for e in world.audit("login.oidc.refused")] == [detail]


def test_a_local_users_name_cannot_be_taken_over(world: World) -> None:
    world.identity.accounts.create(ADMIN, "ana", Role.ANALYST, PASSWORD, mfa_required=False)
    detail = problem_of(world.login("ana"), 403)
    assert "the username 'ana' belongs to another account" in detail
    (user,) = world.users()
    assert user.source == "local" and user.external_subject is None
    assert world.identity.sessions.login("ana", PASSWORD).token  # the local user is untouched


def test_an_oidc_user_has_no_password_login(world: World) -> None:
    assert world.login("ana").status_code == 200
    with pytest.raises(LoginError):
        world.identity.sessions.login("ana", "")
    with pytest.raises(LoginError):
        world.identity.sessions.login("ana", PASSWORD)


def hmac_with_the_public_key(_token: str, claims: Claims) -> str:
    """Key confusion: HS256 "signed" with the provider's public key as the HMAC secret."""
    header = b64(json.dumps({"alg": "HS256", "kid": "key-1"}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(PUBLIC_PEM, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def unsigned(_token: str, claims: Claims) -> str:
    header = b64(json.dumps({"alg": "none", "kid": "key-1"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def tampered(token: str, claims: Claims) -> str:
    """The provider's signature over other claims: the groups raised to admin."""
    header, _payload, signature = token.split(".")
    raised = {**claims, "groups": ["fraud-admins"]}
    return f"{header}.{b64(json.dumps(raised).encode())}.{signature}"


def other_key(_token: str, claims: Claims) -> str:
    return jwt.encode(claims, OTHER_KEY, algorithm="RS256", headers={"kid": "key-1"})


PUBLIC_PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
NOW = int(time.time())
BROKEN_TOKENS: dict[str, tuple[Callable[[Claims], Claims] | None, Any, str]] = {
    "wrong nonce": (lambda c: c | {"nonce": "another-login"}, None, "its nonce"),
    "no nonce": (lambda c: {k: v for k, v in c.items() if k != "nonce"}, None, "its nonce"),
    "expired": (lambda c: c | {"iat": NOW - 900, "exp": NOW - 600}, None, "it has expired"),
    "wrong audience": (lambda c: c | {"aud": "another-app"}, None, "another client (aud)"),
    "several audiences, azp another": (
        lambda c: c | {"aud": [CLIENT_ID, "another-app"], "azp": "another-app"},
        None,
        "azp is not this client",
    ),
    "wrong issuer": (lambda c: c | {"iss": "https://evil.example.test"}, None, "another issuer"),
    "no expiry": (lambda c: {k: v for k, v in c.items() if k != "exp"}, None, '"exp"'),
    "tampered payload": (None, tampered, "its signature does not verify"),
    "another key": (None, other_key, "its signature does not verify"),
    "alg none": (None, unsigned, "algorithm 'none' is not accepted"),
    "HS256 with the public key": (None, hmac_with_the_public_key, "'HS256' is not accepted"),
    "not a JWT": (None, lambda _t, _c: "not-a-jwt", "not a JWT"),
}


def test_the_unbroken_token_passes(world: World) -> None:
    """The control of the cases below: the same flow, nothing broken, succeeds."""
    assert world.login("ana").status_code == 200


@pytest.mark.parametrize("broken", sorted(BROKEN_TOKENS))
def test_a_broken_id_token_is_refused(world: World, broken: str) -> None:
    edit_claims, edit_token, reason = BROKEN_TOKENS[broken]
    if edit_claims is not None:
        world.idp.edit_claims = edit_claims
    if edit_token is not None:
        world.idp.edit_token = edit_token
    detail = problem_of(world.login("ana"), 401)
    assert reason in detail, detail
    assert world.users() == []
    (refused,) = world.audit("login.oidc.refused")
    assert refused["change"]["reason"] == detail and refused["actor"] == "unknown"


def test_a_callback_this_browser_did_not_start_is_refused(world: World) -> None:
    """State in the cookie of the browser that started: no login CSRF, no stale login."""
    assert "does not match" in problem_of(world.login("ana", state="attackers-state"), 401)

    start = world.client.get("/v1/auth/oidc/login", follow_redirects=False)
    back = world.idp.authorize(start.headers["location"], "ana")
    world.client.cookies.clear()  # the victim's browser: the attacker's code, no cookie
    detail = problem_of(world.callback(back), 401)
    assert detail.startswith("no login was started from this browser")

    world.client.cookies.set(oidc.COOKIE, "forged", path=COOKIE_PATH)
    assert "no login was started" in problem_of(world.callback(back), 401)


def test_a_login_that_took_too_long_is_refused(world: World) -> None:
    start = world.client.get("/v1/auth/oidc/login", follow_redirects=False)
    back = world.idp.authorize(start.headers["location"], "ana")
    world.clock.advance(minutes=10, seconds=1)
    detail = problem_of(world.callback(back), 401)
    assert detail == "the login took longer than 10 minutes: start again at /v1/auth/oidc/login"


def test_a_code_works_once(world: World) -> None:
    start = world.client.get("/v1/auth/oidc/login", follow_redirects=False)
    back = world.idp.authorize(start.headers["location"], "ana")
    cookie = world.client.cookies.get(oidc.COOKIE)
    assert world.callback(back).status_code == 200
    world.client.cookies.set(oidc.COOKIE, cookie or "", path=COOKIE_PATH)
    detail = problem_of(world.callback(back), 401)
    assert detail == "the identity provider refused the code (invalid_grant)"


def test_the_code_goes_only_with_the_verifier_of_its_login(world: World) -> None:
    """PKCE: the same code with another verifier (an intercepted code) gets no token."""
    start = world.client.get("/v1/auth/oidc/login", follow_redirects=False)
    back = world.idp.authorize(start.headers["location"], "ana")
    sealer = world.identity.sessions.sealer
    pending = json.loads(sealer.open(world.client.cookies[oidc.COOKIE]))
    pending["verifier"] = secrets.token_urlsafe(48)
    world.client.cookies.clear()
    world.client.cookies.set(oidc.COOKIE, sealer.seal(json.dumps(pending)), path=COOKIE_PATH)
    detail = problem_of(world.callback(back), 401)
    assert detail == "the identity provider refused the code (invalid_grant)"


def test_the_providers_error_and_another_issuer_are_refused(world: World) -> None:
    denied = world.login("ana", error="access_denied")
    assert problem_of(denied, 401) == "the identity provider ended the login: access_denied"
    odd = world.login("ana", error="<script>x</script> or\nnewline")
    assert problem_of(odd, 401) == "the identity provider ended the login: scriptxscriptornewline"
    mixed_up = world.login("ana", iss="https://other-idp.example.test")
    assert problem_of(mixed_up, 401) == "the callback comes from another issuer"


def test_the_client_secret_and_tokens_are_never_audited(world: World) -> None:
    answer = world.login("ana")
    world.login("bob")
    world.idp.edit_token = tampered
    world.login("ana")
    everything = json.dumps(world.identity.audit.read(AuditQuery(limit=1000)), default=str)
    assert CLIENT_SECRET not in everything and answer.json()["token"] not in everything
    assert "access-ana" not in everything and "eyJ" not in everything


# --- the provider down, misconfigured, or OIDC off -------------------------------------------


def test_a_provider_down_is_a_502_problem(world: World) -> None:
    world.idp.down = True
    detail = problem_of(world.client.get("/v1/auth/oidc/login", follow_redirects=False), 502)
    assert detail.startswith("the identity provider (idp.example.test) is unreachable")


def test_discovery_must_name_the_configured_issuer(world: World) -> None:
    world.idp.issuer_said = "https://idp.example.test/another-pool"
    detail = problem_of(world.client.get("/v1/auth/oidc/login", follow_redirects=False), 502)
    assert "did not describe the issuer" in detail


def test_off_by_default_both_routes_are_404(template_db: Path, tmp_path: Path) -> None:
    shutil.copyfile(template_db, tmp_path / "app.db")
    engine = open_database(f"sqlite:///{tmp_path / 'app.db'}", migrate=False)
    identity = make_identity(engine, Clock())
    assert IdentitySettings().oidc.enabled is False
    assert oidc.oidc_login_for(identity.sessions) is None
    with TestClient(create_app(CaseServices(engine, identity, CaseWork(engine)))) as client:
        for path in ("/v1/auth/oidc/login", "/v1/auth/oidc/callback?code=x&state=y"):
            detail = problem_of(client.get(path, follow_redirects=False), 404)
            assert detail == "corporate login (OIDC) is off here: log in with a password"
    engine.dispose()


def test_the_settings_are_checked_when_the_app_is_made(world: World) -> None:
    sessions = world.identity.sessions
    with pytest.raises(ValueError, match="https URL"):
        OidcLogin(settings(issuer="http://idp.example.test"), sessions)
    with pytest.raises(ValueError, match="client_id is required"):
        OidcLogin(settings(client_id=""), sessions)
    with pytest.raises(ValidationError, match="group_roles"):
        settings(group_roles={"x": "superuser"})
    assert check_url("http://127.0.0.1:9000/x", "issuer") == "http://127.0.0.1:9000/x"
    assert check_url("http://localhost:9000", "issuer") == "http://localhost:9000"
    assert typing.get_args(OidcRole) == tuple(r.value for r in Role)  # config ≡ roles


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """How an operator sets it (docs/cases.md): nested variables, the mapping as JSON."""
    monkeypatch.setenv("FRAUDRISK_IDENTITY__OIDC__ENABLED", "true")
    monkeypatch.setenv("FRAUDRISK_IDENTITY__OIDC__GROUPS_CLAIM", "cognito:groups")
    monkeypatch.setenv(
        "FRAUDRISK_IDENTITY__OIDC__GROUP_ROLES", '{"fraud-admins":"admin","fraud-team":"analyst"}'
    )
    made = Settings().identity.oidc
    assert made.enabled and made.groups_claim == "cognito:groups"
    assert list(made.group_roles.items()) == [("fraud-admins", "admin"), ("fraud-team", "analyst")]
