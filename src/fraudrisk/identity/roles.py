"""Roles and what each may do: the permission matrix, in one place.

``docs/permissions.md`` is generated from :data:`MATRIX` (``fraudrisk users permissions``) and
a test keeps the two equal. Object-level rules sit on top of the matrix: without
``cases:read-all`` a user sees and changes only the cases of the queues they are a member of.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A person's role on the platform."""

    ANALYST = "analyst"
    SENIOR_ANALYST = "senior-analyst"
    RISK_MANAGER = "risk-manager"
    MLOPS_ENGINEER = "mlops-engineer"
    ADMIN = "admin"


class Permission(StrEnum):
    """One thing a person may do (also the scopes of a personal API token)."""

    CASES_READ = "cases:read"
    CASES_WORK = "cases:work"
    CASES_ASSIGN = "cases:assign"
    CASES_READ_ALL = "cases:read-all"
    LABELS_INGEST = "labels:ingest"
    QUEUES_MANAGE = "queues:manage"
    POLICY_READ = "policy:read"
    POLICY_AUTHOR = "policy:author"
    POLICY_APPROVE = "policy:approve"
    MODELS_READ = "models:read"
    MODELS_PROMOTE = "models:promote"
    MONITORING_READ = "monitoring:read"
    AUDIT_READ = "audit:read"
    USERS_MANAGE = "users:manage"


#: What a permission lets a person do (the documentation's second column).
MEANING: dict[Permission, str] = {
    Permission.CASES_READ: "see cases of their queues and the case view; comment on them",
    Permission.CASES_WORK: "claim, escalate, snooze, resolve, reopen their queues' cases",
    Permission.CASES_ASSIGN: "assign cases to others, bulk assign and bulk resolve",
    Permission.CASES_READ_ALL: "see and work cases of every queue (not only their own)",
    Permission.LABELS_INGEST: "ingest a chargeback feed (`fraudrisk labels ingest`)",
    Permission.QUEUES_MANAGE: "create queues, set their SLA and members, edit routing rules",
    Permission.POLICY_READ: "see policy versions, diffs and backtests",
    Permission.POLICY_AUTHOR: "draft and submit policy versions",
    Permission.POLICY_APPROVE: "approve, activate and roll back a policy (never their own)",
    Permission.MODELS_READ: "see registered models, aliases and canary status",
    Permission.MODELS_PROMOTE: "start, promote and roll back a canary",
    Permission.MONITORING_READ: "see drift and performance reports and live metrics",
    Permission.AUDIT_READ: "read the audit log",
    Permission.USERS_MANAGE: "create, disable and change users, reset MFA, issue tokens",
}

_P = Permission
_ANALYST = frozenset({_P.CASES_READ, _P.CASES_WORK, _P.MONITORING_READ})
#: The permission matrix: every role's permissions.
MATRIX: dict[Role, frozenset[Permission]] = {
    Role.ANALYST: _ANALYST,
    Role.SENIOR_ANALYST: _ANALYST | {_P.CASES_ASSIGN, _P.CASES_READ_ALL, _P.LABELS_INGEST},
    Role.RISK_MANAGER: frozenset(
        {
            _P.CASES_READ,
            _P.CASES_READ_ALL,
            _P.POLICY_READ,
            _P.POLICY_AUTHOR,
            _P.POLICY_APPROVE,
            _P.MODELS_READ,
            _P.MONITORING_READ,
            _P.AUDIT_READ,
            _P.LABELS_INGEST,
        }
    ),
    Role.MLOPS_ENGINEER: frozenset(
        {_P.MODELS_READ, _P.MODELS_PROMOTE, _P.MONITORING_READ, _P.POLICY_READ}
    ),
    Role.ADMIN: frozenset(
        {
            _P.USERS_MANAGE,
            _P.QUEUES_MANAGE,
            _P.AUDIT_READ,
            _P.CASES_READ,
            _P.CASES_READ_ALL,
            _P.MODELS_READ,
            _P.MONITORING_READ,
            _P.POLICY_READ,
        }
    ),
}


def permissions_of(role: Role | str) -> frozenset[Permission]:
    """The permissions of a role.

    Raises:
        ValueError: For an unknown role, naming the known ones.
    """
    try:
        return MATRIX[Role(role)]
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {role!r}: one of {known}") from None


def parse_scopes(scopes: str | list[str] | None) -> frozenset[Permission]:
    """Scopes named by a person (``"cases:read cases:work"``), checked against the known ones.

    Raises:
        ValueError: For an unknown scope, naming the known ones.
    """
    names = scopes.split() if isinstance(scopes, str) else list(scopes or ())
    try:
        return frozenset(Permission(name) for name in names)
    except ValueError as error:
        known = ", ".join(p.value for p in Permission)
        raise ValueError(f"{error}: scopes are {known}") from None


def matrix_markdown() -> str:
    """The matrix as a Markdown page (``docs/permissions.md``)."""
    roles = list(Role)
    lines = [
        "# Roles and permissions",
        "",
        "Generated from `fraudrisk.identity.roles.MATRIX` by `fraudrisk users permissions "
        "--markdown`; a test keeps this page equal to the code.",
        "",
        "Without `cases:read-all` a person sees and works only the cases of the queues they "
        "are a member of. A personal API token carries a subset of its owner's permissions "
        "(its scopes), and loses any the owner loses.",
        "",
        "| permission | what it allows | " + " | ".join(r.value for r in roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for permission in Permission:
        marks = " | ".join("✔" if permission in MATRIX[r] else "" for r in roles)
        lines.append(f"| `{permission.value}` | {MEANING[permission]} | {marks} |")
    return "\n".join(lines) + "\n"
