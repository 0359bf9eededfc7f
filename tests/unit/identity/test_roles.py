"""The permission matrix: its documentation equals the code, and its rules hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudrisk.identity.errors import PermissionDeniedError
from fraudrisk.identity.principal import Principal
from fraudrisk.identity.roles import (
    MATRIX,
    MEANING,
    Permission,
    Role,
    matrix_markdown,
    parse_scopes,
    permissions_of,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "permissions.md"
REGENERATE = "run `fraudrisk users permissions --markdown > docs/permissions.md`"


def test_docs_permissions_md_equals_the_matrix() -> None:
    assert DOC.exists(), f"docs/permissions.md is missing: {REGENERATE}"
    assert DOC.read_text(encoding="utf-8") == matrix_markdown(), (
        f"docs/permissions.md differs from fraudrisk.identity.roles.MATRIX: {REGENERATE}"
    )


def test_the_page_shows_every_permission_of_every_role() -> None:
    lines = matrix_markdown().splitlines()
    header = next(line for line in lines if line.startswith("| permission |"))
    roles = [cell.strip() for cell in header.strip("|").split("|")[2:]]
    assert roles == [r.value for r in Role]
    rows = [line for line in lines if line.startswith("| `")]
    assert len(rows) == len(Permission)
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        permission = Permission(cells[0].strip("`"))
        assert cells[1] == MEANING[permission]
        marked = {Role(r) for r, mark in zip(roles, cells[2:], strict=True) if mark == "✔"}
        assert marked == {r for r in Role if permission in MATRIX[r]}


def test_every_role_and_permission_is_in_the_matrix() -> None:
    assert set(MATRIX) == set(Role)
    assert set(MEANING) == set(Permission)
    assert set().union(*MATRIX.values()) == set(Permission)  # no permission nobody has
    assert all(MATRIX[role] for role in Role)


@pytest.mark.parametrize(
    ("permission", "roles"),
    [
        (Permission.USERS_MANAGE, {Role.ADMIN}),
        (Permission.QUEUES_MANAGE, {Role.ADMIN}),
        (Permission.MODELS_PROMOTE, {Role.MLOPS_ENGINEER}),
        (Permission.POLICY_APPROVE, {Role.RISK_MANAGER}),
        (Permission.CASES_WORK, {Role.ANALYST, Role.SENIOR_ANALYST}),
        (Permission.CASES_ASSIGN, {Role.SENIOR_ANALYST}),
        (Permission.AUDIT_READ, {Role.RISK_MANAGER, Role.ADMIN}),
    ],
)
def test_who_may_do_the_sensitive_things(permission: Permission, roles: set[Role]) -> None:
    assert {r for r in Role if permission in permissions_of(r)} == roles


def test_a_senior_analyst_can_do_all_an_analyst_can() -> None:
    assert permissions_of(Role.ANALYST) < permissions_of(Role.SENIOR_ANALYST)
    assert Permission.CASES_READ_ALL not in permissions_of(Role.ANALYST)


def test_permissions_of_accepts_names_and_refuses_unknown_roles() -> None:
    assert permissions_of("mlops-engineer") == MATRIX[Role.MLOPS_ENGINEER]
    with pytest.raises(ValueError, match="unknown role 'root': one of analyst, senior-analyst"):
        permissions_of("root")


def test_parse_scopes() -> None:
    assert parse_scopes("cases:read  cases:work") == {Permission.CASES_READ, Permission.CASES_WORK}
    assert parse_scopes(["audit:read"]) == {Permission.AUDIT_READ}
    assert parse_scopes("") == parse_scopes(None) == frozenset()
    with pytest.raises(ValueError, match="'cases:delete' is not a valid Permission: scopes are"):
        parse_scopes("cases:read cases:delete")


def test_a_principal_is_allowed_exactly_its_permissions() -> None:
    rita = Principal(1, "rita", Role.RISK_MANAGER, permissions_of(Role.RISK_MANAGER), 3, "session")
    rita.require(Permission.POLICY_APPROVE)
    assert rita.can(Permission.AUDIT_READ) and not rita.can(Permission.CASES_WORK)
    with pytest.raises(PermissionDeniedError, match=r"rita \(risk-manager\).*needs users:manage"):
        rita.require(Permission.USERS_MANAGE)
    assert rita.actor.username == "rita" and rita.actor.source == "session"
