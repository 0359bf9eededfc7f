"""Corporate login against a real OpenID Connect provider (npm's ``oidc-provider``) on loopback.

The provider (``oidc_provider/provider.mjs``, the version pinned by its ``package.json`` and
installed by ``make oidc-provider`` outside the repository) runs under node on a free
127.0.0.1 port, with one confidential client, PKCE required, a fresh signing key and three
people. The case API runs under uvicorn on another free port, over PostgreSQL, its OIDC login
made from the settings the way ``fraudrisk cases serve`` makes it. The browser is an httpx
client with a cookie jar: it follows the redirects, fills in the provider's login and consent
forms and lands on the callback, which answers the session token.

The negative control re-signs the provider's ID token with another key on its way to us (the
groups raised to admin): refused, and accepted only by a verifier made to trust that key —
the test sees the difference.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import jwt
import psycopg
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.integration.identity.oidc_provider.npm_cache import (
    HERE,
    ProviderInstallError,
    ensure_installed,
)
from tests.support.asgi import serve_in_thread as serving

from fraudrisk.cases.api import CaseServices, create_app
from fraudrisk.cases.service import case_services
from fraudrisk.config import DatabaseSettings, IdentitySettings, OidcSettings, Settings
from fraudrisk.identity import oidc
from fraudrisk.identity.accounts import ExternalIdentity
from fraudrisk.identity.audit import AuditLog, AuditQuery
from fraudrisk.identity.roles import Role
from fraudrisk.identity.tables import USERS
from fraudrisk.io import database
from fraudrisk.io.kafka_broker import free_port

pytestmark = pytest.mark.integration

CLIENT_ID, CLIENT_SECRET = "fraudrisk-cases", "a-client-secret-for-the-tests"
PEOPLE = {
    "alice": {"preferred_username": "alice", "name": "Alice A.", "groups": ["fraud-analysts"]},
    "sam": {"preferred_username": "sam", "groups": ["fraud-analysts", "fraud-admins"]},
    "mallory": {"preferred_username": "mallory", "groups": ["marketing"]},
}
GROUP_ROLES = {"fraud-admins": "admin", "fraud-analysts": "analyst"}
ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
START_TIMEOUT_S = 30


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen[str]
    log: Path


def wait_for_discovery(issuer: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the OIDC provider exited ({process.returncode}): {log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).is_success:
                return
        time.sleep(0.1)
    pytest.fail(f"the OIDC provider did not answer in {START_TIMEOUT_S} s: {log.read_text()}")


@pytest.fixture(scope="module")
def app_ports() -> dict[str, int]:
    """The case API's ports (known before the provider starts: they are its redirect URIs)."""
    return {"trusted": free_port(), "tampered": free_port(), "broken": free_port()}


def callback_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/auth/oidc/callback"


@pytest.fixture(scope="module")
def provider(
    tmp_path_factory: pytest.TempPathFactory, app_ports: dict[str, int]
) -> Iterator[Provider]:
    """``provider.mjs`` under node on a free loopback port (fails, never skips, without node)."""
    try:
        modules = ensure_installed()
        node = shutil.which("node") or "node"
    except ProviderInstallError as error:
        pytest.fail(str(error))
    run = tmp_path_factory.mktemp("oidc-provider")
    shutil.copyfile(HERE / "provider.mjs", run / "provider.mjs")
    (run / "node_modules").symlink_to(modules, target_is_directory=True)
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "OIDC_PORT": str(port),
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_REDIRECT_URIS": ",".join(callback_url(p) for p in app_ports.values()),
        "OIDC_ACCOUNTS": json.dumps(PEOPLE),
    }
    log = run / "provider.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [node, "provider.mjs"],
            cwd=run,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    issuer = f"http://127.0.0.1:{port}"
    try:
        wait_for_discovery(issuer, process, log)
        yield Provider(issuer, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def pg_url(postgres_server: str) -> Iterator[str]:
    """A database of this module's on the session's PostgreSQL (migrated; dropped after)."""
    name = f"oidc_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{postgres_server.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    engine = database.create_engine(url)
    database.upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


class Resigning(httpx.HTTPTransport):
    """The provider's answers as they are, or (``active``) its ID token re-signed by an attacker.

    The attacker keeps the header's ``kid`` and raises the groups to ``fraud-admins``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.active = False
        self.resigned = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if not self.active or request.url.path != "/token":
            return response
        response.read()
        body = json.loads(response.content)
        claims = jwt.decode(body["id_token"], options={"verify_signature": False})
        kid = jwt.get_unverified_header(body["id_token"])["kid"]
        claims["groups"] = ["fraud-admins"]
        body["id_token"] = jwt.encode(claims, ATTACKER_KEY, algorithm="RS256", headers={"kid": kid})
        self.resigned += 1
        return httpx.Response(response.status_code, json=body)


class TrustingAnyKey(oidc.OidcLogin):
    """A broken verifier (for the negative control only): it trusts the attacker's key."""

    def _key(self, kid: Any, algorithm: str) -> jwt.PyJWK:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(ATTACKER_KEY.public_key(), as_dict=True)
        return jwt.PyJWK(public, algorithm)


@dataclass
class Apps:
    trusted: str
    tampered: str
    transport: Resigning
    services: CaseServices
    issuer: str
    ports: dict[str, int]


def oidc_settings(issuer: str, port: int) -> OidcSettings:
    return OidcSettings(
        enabled=True,
        issuer=issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_url=callback_url(port),
        scopes=["openid", "profile", "groups"],
        group_roles=GROUP_ROLES,
    )


@pytest.fixture(scope="module")
def apps(
    provider: Provider,
    pg_url: str,
    app_ports: dict[str, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Apps]:
    """The case API twice over one database: as configured, and behind the re-signing wire."""
    settings = Settings(
        home=tmp_path_factory.mktemp("home"),
        db=DatabaseSettings(url=pg_url),
        identity=IdentitySettings(oidc=oidc_settings(provider.issuer, app_ports["trusted"])),
    )
    services = case_services(settings)  # the OIDC login from the settings, as in production
    assert services.oidc is None
    transport = Resigning()
    wire = httpx.Client(transport=transport, timeout=10)
    behind_wire = oidc.OidcLogin(
        oidc_settings(provider.issuer, app_ports["tampered"]), services.identity.sessions, wire
    )
    tampered = dataclasses.replace(services, oidc=behind_wire)
    with (
        serving(create_app(services), app_ports["trusted"]) as trusted_url,
        serving(create_app(tampered), app_ports["tampered"]) as tampered_url,
    ):
        yield Apps(trusted_url, tampered_url, transport, services, provider.issuer, app_ports)
    wire.close()
    services.engine.dispose()


class Forms(HTMLParser):
    """The forms of a page: their action and their inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((named.get("action", ""), {}))
        elif tag == "input" and self.forms and named.get("name"):
            self.forms[-1][1][named["name"]] = named.get("value", "")


@dataclass
class Trip:
    """Where the browser went, and the callback's answer."""

    answer: httpx.Response
    visited: list[str]


def browser_login(app_url: str, login: str) -> Trip:
    """A person signing in with a browser: our redirect, the provider's forms, our callback."""
    visited: list[str] = []
    with httpx.Client(timeout=20, follow_redirects=True) as browser:
        browser.event_hooks["response"] = [lambda r: visited.append(str(r.request.url))]
        page = browser.get(f"{app_url}/v1/auth/oidc/login")
        for _form in range(3):  # the login form, the consent form
            if urlsplit(str(page.url)).path == "/v1/auth/oidc/callback":
                return Trip(page, visited)
            parser = Forms()
            parser.feed(page.text)
            assert parser.forms, f"no form at {page.url}: {page.status_code} {page.text[:500]}"
            action, fields = parser.forms[0]
            if "login" in fields:
                fields |= {"login": login, "password": "the provider's to check"}
            page = browser.post(urljoin(str(page.url), action), data=fields)
    pytest.fail(f"the browser never reached the callback: {visited}")


def me(app_url: str, token: str) -> dict[str, Any]:
    answer = httpx.get(f"{app_url}/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_person_signs_in_at_the_provider_and_gets_a_session(
    apps: Apps, provider: Provider
) -> None:
    trip = browser_login(apps.trusted, "alice")
    assert trip.answer.status_code == 200, trip.answer.text
    to_provider = [u for u in trip.visited if u.startswith(f"{provider.issuer}/auth?")]
    query = parse_qs(urlsplit(to_provider[0]).query)
    assert query["code_challenge_method"] == ["S256"] and query["scope"] == [
        "openid profile groups"
    ]
    back = parse_qs(urlsplit(trip.visited[-1]).query)
    assert back["iss"] == [provider.issuer] and back["state"] == query["state"]
    assert me(apps.trusted, trip.answer.json()["token"])["role"] == "analyst"

    audit = AuditLog(apps.services.engine)
    (login,) = audit.read(AuditQuery(actor="alice", action="login.oidc"))
    assert login["change"] == {
        "issuer": provider.issuer,
        "role": "analyst",
        "group": "fraud-analysts",
    }
    assert audit.read(AuditQuery(actor="alice", action="user.provision"))
    assert audit.verify() is None

    again = browser_login(apps.trusted, "alice")  # the same user, a second session
    assert again.answer.status_code == 200
    assert me(apps.trusted, again.answer.json()["token"])["username"] == "alice"
    assert len(audit.read(AuditQuery(actor="alice", action="user.provision"))) == 1


def test_the_first_mapped_group_gives_the_role(apps: Apps) -> None:
    trip = browser_login(apps.trusted, "sam")
    assert me(apps.trusted, trip.answer.json()["token"])["role"] == "admin"


def test_a_person_in_no_mapped_group_is_refused(apps: Apps) -> None:
    trip = browser_login(apps.trusted, "mallory")
    assert trip.answer.status_code == 403
    assert trip.answer.headers["content-type"] == "application/problem+json"
    assert (
        "none of your groups at the identity provider (marketing)" in trip.answer.json()["detail"]
    )
    audit = AuditLog(apps.services.engine)
    (refused,) = audit.read(AuditQuery(actor="mallory", action="login.oidc.refused"))
    assert "marketing" in refused["change"]["reason"]


def test_an_id_token_signed_by_another_key_is_refused(apps: Apps) -> None:
    """Negative control: the wire re-signs the token (groups raised to admin)."""
    apps.transport.active = False
    assert browser_login(apps.tampered, "alice").answer.status_code == 200  # the wire alone

    apps.transport.active = True
    trip = browser_login(apps.tampered, "alice")
    assert apps.transport.resigned == 1
    assert trip.answer.status_code == 401, trip.answer.text
    assert trip.answer.json()["detail"] == "the ID token is refused: its signature does not verify"

    # The same forged token through a verifier that trusts the attacker's key is accepted:
    # the refusal above is the signature check's, and this test would see it missing.
    port = apps.ports["broken"]
    resigning = Resigning()
    resigning.active = True
    with httpx.Client(transport=resigning, timeout=10) as wire:
        broken = TrustingAnyKey(
            oidc_settings(apps.issuer, port), apps.services.identity.sessions, wire
        )
        with serving(create_app(dataclasses.replace(apps.services, oidc=broken)), port) as url:
            forged = browser_login(url, "alice")
    assert forged.answer.status_code == 200, forged.answer.text
    assert me(apps.trusted, forged.answer.json()["token"])["role"] == "admin"  # escalated


def test_concurrent_first_logins_of_one_person_make_one_user(apps: Apps) -> None:
    """On PostgreSQL: eight first logins of one person at once, eight sessions, one user.

    Without the advisory lock of ``sessions._serialise_provisioning`` (patched out by hand)
    some of the eight fail with an IntegrityError on the unique (issuer, subject) index.
    """
    sessions = apps.services.identity.sessions
    person = ExternalIdentity(apps.issuer, "racing-subject", "racer", Role.ANALYST)
    start = threading.Barrier(8)
    outcomes: list[object] = []

    def first_login() -> None:
        start.wait()
        try:
            outcomes.append(sessions.login_external(person, "race"))
        except Exception as error:  # reported below, with the others
            outcomes.append(error)

    threads = [threading.Thread(target=first_login) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [type(o).__name__ for o in outcomes] == ["IssuedToken"] * 8
    with apps.services.engine.connect() as connection:
        users = connection.execute(sa.select(USERS).where(USERS.c.username == "racer")).all()
    assert len(users) == 1 and users[0].external_subject == "racing-subject"
