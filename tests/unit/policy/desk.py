"""A policy desk: a case world with two risk managers (rita, rob) and its policy versions.

Shared by the policy tests, unit (SQLite) and integration: the `desk` fixture is registered
in tests/unit/policy/conftest.py and tests/integration/policy/conftest.py; a module that needs
other people or another linter defines its own `desk` with :func:`open_desk`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from tests.unit.cases.case_doubles import CaseWorld, fast_argon2, world

from fraudrisk.identity.roles import Role
from fraudrisk.policy.loader import lint_text
from fraudrisk.policy.versions import PolicyVersions

#: A policy the versions tests draft: it routes big amounts to the high-value queue.
POLICY = """\
name: desk
thresholds: {review: 0.1, decline: 0.9}
alert_budget: 20
rules:
  - {name: big, when: amount >= 250, action: route, queue: high-value, reason: Big amount}
"""
#: The second version: a lower review threshold.
LOWER = POLICY.replace("review: 0.1", "review: 0.08")

Desk = tuple[CaseWorld, PolicyVersions]
#: ``lint(text, name)``: the problems of a policy text, as ``name:line:col: message``.
Lint = Callable[[str, str], Sequence[str]]


def policy_lint(text: str, name: str) -> Sequence[str]:
    """The policy linter's problems, as strings."""
    return [str(problem) for problem in lint_text(text, name)]


def open_desk(url: str, lint: Lint = policy_lint, **others: Role) -> Desk:
    """A migrated world at ``url`` with rita and rob (risk managers) and ``others`` by name."""
    with fast_argon2():
        made = world(url)
        for name, role in {"rita": Role.RISK_MANAGER, "rob": Role.RISK_MANAGER, **others}.items():
            made.add_user(name, role)
    return made, PolicyVersions(made.engine, lint, made.clock)


@pytest.fixture()
def desk(tmp_path: Path) -> Iterator[Desk]:
    """A desk of its own (SQLite) for one test, with the real policy linter."""
    made, versions = open_desk(f"sqlite:///{tmp_path / 'app.db'}")
    yield made, versions
    made.close()


def approved(desk: Desk, text: str, name: str = "p") -> int:
    """A version of policy ``name`` drafted and submitted by rita, approved by rob."""
    made, versions = desk
    number = versions.draft(made.principal("rita"), name, text).number
    versions.submit(made.principal("rita"), number)
    versions.approve(made.principal("rob"), number)
    return number
