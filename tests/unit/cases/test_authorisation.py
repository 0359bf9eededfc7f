"""Who may call what: every route × every role × a case or queue of their own / of another.

The expected status of each cell is derived from the permission matrix
(:data:`fraudrisk.identity.roles.MATRIX`) and the route's rule below (the permission it needs,
whether the case or queue must be visible to the caller, whether they must be a member), never
written per cell. A route of the app that the table does not cover fails the test, so a new
route must be added here with its rule. Every role's user is a member of ``general`` (their own
queue) and of no other; ``declines`` is the other queue.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Route
from tests.unit.cases.case_doubles import BOOT, DAY, PASSWORD, CaseWorld, alert, world

from fraudrisk.cases.tables import CASES, QUEUES
from fraudrisk.identity.roles import MATRIX, Permission, Role, permissions_of
from fraudrisk.policy.linting import policy_versions

OWN, OTHER = "general", "declines"
P = Permission
POLICY = "name: p\nthresholds: {review: 0.1, decline: 0.9}\nalert_budget: 10\n"
ACTIVE_POLICY = 1


def future() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()


@dataclass(frozen=True)
class Cell:
    """One request of the matrix: who, and whether the case or queue is theirs."""

    role: Role
    scope: str  # "own" | "other" | "-" (the route names no case or queue)
    case_id: int
    queue: str

    @property
    def username(self) -> str:
        return self.role.value


@dataclass(frozen=True)
class Rule:
    """What a route needs, in the order the route checks it.

    ``needs``: the permission (none: signed in is enough); ``scoped``: the case or queue must
    be visible to the caller (one of their queues, or ``cases:read-all``), else 404;
    ``member``: the caller must also be a member of the queue, else 403.
    """

    ok: int
    needs: Permission | None = None
    public: bool = False
    scoped: bool = False
    member: bool = False
    per_scope: bool = False  # the request names a case or queue: run it for both
    fresh_session: bool = False  # the call ends the session: use one of its own
    body: Callable[[Cell], Any] | None = None
    query: Callable[[Cell], dict[str, Any]] | None = None
    check: Callable[[Cell, Any, bool], None] | None = None  # the content, given visibility


def _listed(cell: Cell, answer: Any, visible: bool) -> None:
    ids = {c["id"] for c in answer.json()}
    assert (cell.case_id in ids) is visible, (cell, ids)


def _bulk_result(cell: Cell, answer: Any, visible: bool) -> None:
    result = answer.json()[str(cell.case_id)]
    assert (result == "ok") is visible, result
    if not visible:
        assert result == f"no case {cell.case_id} in your queues"


ROUTES: dict[tuple[str, str], Rule] = {
    ("GET", "/openapi.json"): Rule(200, public=True),
    ("GET", "/docs"): Rule(200, public=True),
    ("GET", "/docs/oauth2-redirect"): Rule(200, public=True),
    ("GET", "/redoc"): Rule(200, public=True),
    ("GET", "/healthz"): Rule(200, public=True),
    ("POST", "/v1/auth/login"): Rule(
        200, public=True, body=lambda c: {"username": c.username, "password": PASSWORD}
    ),
    # Corporate login is public, and off in this world: a 404 Problem to everyone
    # (tests/unit/identity/test_oidc.py has it on, against an in-process provider).
    ("GET", "/v1/auth/oidc/login"): Rule(404, public=True),
    ("GET", "/v1/auth/oidc/callback"): Rule(404, public=True),
    ("POST", "/v1/auth/logout"): Rule(204, fresh_session=True),
    ("POST", "/v1/auth/logout-everywhere"): Rule(200, fresh_session=True),
    ("GET", "/v1/me"): Rule(200),
    ("GET", "/v1/queues"): Rule(200, P.CASES_READ),
    ("POST", "/v1/queues/{queue}/claim-next"): Rule(
        200, P.CASES_WORK, scoped=True, member=True, per_scope=True
    ),
    ("GET", "/v1/cases"): Rule(
        200, P.CASES_READ, per_scope=True, query=lambda c: {"queue": c.queue}, check=_listed
    ),
    ("GET", "/v1/cases/{case_id}"): Rule(200, P.CASES_READ, scoped=True, per_scope=True),
    ("POST", "/v1/cases/{case_id}/actions"): Rule(
        200,
        P.CASES_WORK,
        scoped=True,
        per_scope=True,
        body=lambda c: {"action": "snooze", "until": future()},
    ),
    ("POST", "/v1/cases/{case_id}/comments"): Rule(
        201, P.CASES_READ, scoped=True, per_scope=True, body=lambda c: {"text": "seen"}
    ),
    ("GET", "/v1/events"): Rule(200, P.CASES_READ, query=lambda c: {"timeout": 0.05}),
    ("POST", "/v1/cases/bulk"): Rule(
        200,
        P.CASES_ASSIGN,
        per_scope=True,
        body=lambda c: {"case_ids": [c.case_id], "action": "snooze", "until": future()},
        check=_bulk_result,
    ),
    ("GET", "/v1/audit"): Rule(200, P.AUDIT_READ),
    ("GET", "/metrics"): Rule(200, P.MONITORING_READ),
    ("GET", "/v1/users"): Rule(200, P.USERS_MANAGE),
    ("PUT", "/v1/queues/{queue}/members/{username}"): Rule(204, P.QUEUES_MANAGE, per_scope=True),
    ("DELETE", "/v1/queues/{queue}/members/{username}"): Rule(204, P.QUEUES_MANAGE, per_scope=True),
    # Policy version 1 is active (written by another risk manager, so approving it is no
    # four-eyes refusal): a step answers 409 to whoever may take it, 403 to the others.
    ("GET", "/v1/policies"): Rule(200, P.POLICY_READ),
    ("GET", "/v1/policies/active"): Rule(200, P.POLICY_READ),
    ("GET", "/v1/policies/{n}"): Rule(200, P.POLICY_READ),
    ("GET", "/v1/policies/{a}/diff/{b}"): Rule(200, P.POLICY_READ),
    ("POST", "/v1/policies"): Rule(201, P.POLICY_AUTHOR, body=lambda c: {"text": POLICY}),
    ("POST", "/v1/policies/{n}/submit"): Rule(409, P.POLICY_AUTHOR),
    ("POST", "/v1/policies/{n}/approve"): Rule(409, P.POLICY_APPROVE),
    ("POST", "/v1/policies/{n}/reject"): Rule(409, P.POLICY_APPROVE),
    ("POST", "/v1/policies/{n}/activate"): Rule(409, P.POLICY_APPROVE),
    ("POST", "/v1/policies/rollback"): Rule(
        409, P.POLICY_APPROVE, body=lambda c: {"to": ACTIVE_POLICY}
    ),
}
PUBLIC = {key for key, rule in ROUTES.items() if rule.public}


def visible_to(role: Role, scope: str) -> bool:
    return scope != "other" or P.CASES_READ_ALL in permissions_of(role)


def expected(rule: Rule, role: Role, scope: str) -> int:
    """The status a route answers the role, from the matrix and the route's rule."""
    if rule.public:
        return rule.ok
    permissions = permissions_of(role)
    if rule.needs is not None and rule.needs not in permissions:
        return 403
    if rule.scoped and not visible_to(role, scope):
        return 404
    if rule.member and scope != "own":
        return 403
    return rule.ok


def app_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        assert isinstance(route, APIRoute | Route), route
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


@dataclass
class Matrix:
    world: CaseWorld
    client: TestClient
    cases: dict[str, list[int]]  # queue → its case ids, highest priority first
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def cell(self, role: Role, scope: str) -> Cell:
        queue = OTHER if scope == "other" else OWN
        return Cell(role, scope, self.cases[queue][-1], queue)

    def request(
        self, method: str, template: str, cell: Cell, headers: dict[str, str] | None
    ) -> Any:
        rule = ROUTES[(method, template)]
        path = template.format(
            case_id=cell.case_id,
            queue=cell.queue,
            username="extra",
            n=ACTIVE_POLICY,
            a=ACTIVE_POLICY,
            b=ACTIVE_POLICY,
        )
        return self.client.request(
            method,
            path,
            headers=headers,
            json=rule.body(cell) if rule.body else None,
            params=rule.query(cell) if rule.query else None,
        )


def active_policy(made: CaseWorld) -> None:
    """Version 1, written by another risk manager than the matrix's, approved and active."""
    made.add_user("other-risk-manager", Role.RISK_MANAGER)
    versions = policy_versions(made.engine, clock=made.clock)
    author, approver = made.principal("other-risk-manager"), made.principal(Role.RISK_MANAGER.value)
    number = versions.draft(author, "p", POLICY).number
    versions.submit(author, number)
    versions.approve(approver, number)
    versions.activate(approver, number)
    assert number == ACTIVE_POLICY


@pytest.fixture(scope="module")
def matrix(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    path = tmp_path_factory.mktemp("authorisation") / "app.db"
    shutil.copyfile(template_db, path)
    made = world(f"sqlite:///{path}", migrate=False)
    # ten cases in each queue, one customer each; claim-next takes the highest first, the
    # matrix reads and snoozes the lowest
    made.store.write(
        [alert(c, c, DAY, 10.0 + c, 0.5) for c in range(1, 11)]
        + [alert(c, c, DAY, 10.0 + c, 0.5, "decline") for c in range(11, 21)]
    )
    made.ingester().ingest_all()
    for role in Role:
        made.add_user(role.value, role, [OWN])
    made.add_user("extra", Role.ANALYST)
    active_policy(made)
    with made.engine.connect() as connection:
        rows = connection.execute(
            sa.select(QUEUES.c.name, CASES.c.id)
            .join(QUEUES, QUEUES.c.id == CASES.c.queue_id)
            .order_by(CASES.c.priority.desc())
        ).all()
    cases: dict[str, list[int]] = {OWN: [], OTHER: []}
    for queue, case_id in rows:
        cases[queue].append(case_id)
    with TestClient(made.app()) as client:
        yield Matrix(made, client, cases)
    made.close()


def test_every_route_of_the_app_is_in_the_table(matrix: Matrix) -> None:
    found = app_routes(matrix.client.app)
    assert found - set(ROUTES) == set(), "add the new routes to ROUTES with their rule"
    assert set(ROUTES) - found == set(), "routes in ROUTES that the app no longer has"


def test_the_table_relies_on_every_role_of_the_matrix() -> None:
    assert set(MATRIX) == set(Role)


CELLS = [
    (method, template, role, scope)
    for (method, template), rule in ROUTES.items()
    for role in Role
    for scope in (("own", "other") if rule.per_scope else ("-",))
]


@pytest.mark.parametrize(
    ("method", "template", "role", "scope"),
    CELLS,
    ids=[f"{m} {t} {r.value} {s}" for m, t, r, s in CELLS],
)
def test_the_route_answers_the_role_as_the_matrix_says(
    matrix: Matrix, method: str, template: str, role: Role, scope: str
) -> None:
    rule = ROUTES[(method, template)]
    cell = matrix.cell(role, scope)
    world_ = matrix.world
    token = world_.login(cell.username) if rule.fresh_session else world_.token(cell.username)
    answer = matrix.request(method, template, cell, {"Authorization": f"Bearer {token}"})
    if rule.fresh_session:
        world_.tokens.pop(cell.username, None)  # logout-everywhere ended the kept one too
    want = expected(rule, role, scope)
    assert answer.status_code == want, answer.text
    if want >= 400:
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == want
    elif rule.check is not None:
        rule.check(cell, answer, visible_to(role, scope))


@pytest.mark.parametrize(("method", "template"), sorted(ROUTES))
@pytest.mark.parametrize("token", [None, "", "frs_not-a-token"], ids=["none", "empty", "bogus"])
def test_without_a_valid_token_only_the_public_routes_answer(
    matrix: Matrix, method: str, template: str, token: str | None
) -> None:
    cell = matrix.cell(Role.ADMIN, "own")
    headers = None if token is None else {"Authorization": f"Bearer {token}"}
    answer = matrix.request(method, template, cell, headers)
    if (method, template) in PUBLIC:
        assert answer.status_code == ROUTES[(method, template)].ok, answer.text
        return
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == 'Bearer realm="fraudrisk-cases"'
    assert answer.json()["title"] == "Unauthorized"


def test_a_case_of_another_queue_is_not_found_for_an_analyst(matrix: Matrix) -> None:
    """No IDOR: another queue's case answers exactly like a case that does not exist."""
    client, headers = matrix.client, matrix.world.bearer(Role.ANALYST.value)
    theirs, missing = matrix.cases[OTHER][0], 987_654
    for case_id in (theirs, missing):
        answers = [
            client.get(f"/v1/cases/{case_id}", headers=headers),
            client.post(f"/v1/cases/{case_id}/actions", json={"action": "claim"}, headers=headers),
            client.post(f"/v1/cases/{case_id}/comments", json={"text": "hi"}, headers=headers),
        ]
        for answer in answers:
            assert answer.status_code == 404
            assert answer.json() == {
                "status": 404,
                "title": "Not Found",
                "detail": f"no case {case_id} in your queues",
                "allowed": [],
            }
    listed = client.get("/v1/cases", params={"queue": OTHER}, headers=headers).json()
    assert listed == []
    by_customer = client.get(
        "/v1/cases", params={"customer_id": 11}, headers=headers
    ).json()  # customer 11's case is in declines
    assert by_customer == []
    queues = client.get("/v1/queues", headers=headers).json()
    assert [q["name"] for q in queues] == [OWN]


# --- sessions ending: logout, a disabled user, an expired token ------------------------------


def test_after_logout_the_token_is_refused(fresh: CaseWorld) -> None:
    fresh.add_user("ana", Role.ANALYST, [OWN])
    with TestClient(fresh.app()) as client:
        token, other = fresh.login("ana"), fresh.login("ana")
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/me", headers=headers).status_code == 200
        assert client.post("/v1/auth/logout", headers=headers).status_code == 204
        assert client.get("/v1/me", headers=headers).status_code == 401
        assert client.post("/v1/auth/logout", headers=headers).status_code == 401
        mine = {"Authorization": f"Bearer {other}"}
        assert client.get("/v1/me", headers=mine).status_code == 200  # only that session ended
        ended = client.post("/v1/auth/logout-everywhere", headers=mine)
        assert ended.json() == {"sessions_ended": 1}
        assert client.get("/v1/me", headers=mine).status_code == 401


def test_a_disabled_users_token_is_refused_at_once(fresh: CaseWorld) -> None:
    fresh.add_user("ana", Role.ANALYST, [OWN])
    with TestClient(fresh.app()) as client:
        headers = fresh.bearer("ana")
        assert client.get("/v1/cases", headers=headers).status_code == 200
        fresh.identity.accounts.disable(BOOT, "ana")
        refused = client.get("/v1/cases", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        login = client.post("/v1/auth/login", json={"username": "ana", "password": PASSWORD})
        assert login.status_code == 401


def test_an_expired_session_is_refused(fresh: CaseWorld) -> None:
    fresh.add_user("ana", Role.ANALYST, [OWN])
    with TestClient(fresh.app()) as client:
        login = client.post("/v1/auth/login", json={"username": "ana", "password": PASSWORD})
        assert login.status_code == 200
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        expires = dt.datetime.fromisoformat(login.json()["expires_at"])
        fresh.clock.now = expires - dt.timedelta(seconds=1)
        assert client.get("/v1/me", headers=headers).status_code == 200
        fresh.clock.now = expires
        assert client.get("/v1/me", headers=headers).status_code == 401


def test_a_wrong_password_is_401_and_me_names_the_permissions(fresh: CaseWorld) -> None:
    fresh.add_user("ana", Role.ANALYST, [OWN])
    with TestClient(fresh.app()) as client:
        wrong = client.post("/v1/auth/login", json={"username": "ana", "password": "x" * 12})
        assert wrong.status_code == 401 and wrong.json()["detail"] == (
            "wrong username, password or code"
        )
        me = client.get("/v1/me", headers=fresh.bearer("ana")).json()
        assert me == {
            "username": "ana",
            "role": "analyst",
            "permissions": sorted(p.value for p in MATRIX[Role.ANALYST]),
        }


def test_a_scoped_api_token_has_only_its_scopes(fresh: CaseWorld) -> None:
    """A personal token scoped to cases:read reads but cannot work (the principal's cut)."""
    fresh.add_user("ana", Role.ANALYST, [OWN])
    fresh.store.write([alert(1, 1)])
    fresh.ingester().ingest_all()
    issued = fresh.identity.sessions.create_api_token(BOOT, "ana", "cases:read", 1)
    headers = {"Authorization": f"Bearer {issued.token}"}
    with TestClient(fresh.app()) as client:
        assert client.get("/v1/cases", headers=headers).status_code == 200
        claim = client.post("/v1/queues/general/claim-next", headers=headers)
        assert claim.status_code == 403 and "cases:work" in claim.json()["detail"]


def test_every_combination_is_exercised() -> None:
    """The cells cover each route for each role (and both scopes where a route names one)."""
    per_route = {key: {(r, s) for m, t, r, s in CELLS if (m, t) == key} for key in ROUTES}
    for key, rule in ROUTES.items():
        scopes = ("own", "other") if rule.per_scope else ("-",)
        assert per_route[key] == set(itertools.product(Role, scopes))
