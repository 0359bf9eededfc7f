"""The real lint of stored versions: what ``policy lint`` refuses is never drafted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.cases.case_doubles import CaseWorld, fast_argon2, world

from fraudrisk.identity.roles import Role
from fraudrisk.policy.linting import name_of, policy_environment, policy_lint, policy_versions
from fraudrisk.policy.versions import InvalidPolicyError, VersionStatus

GOOD = """\
name: desk
thresholds: {review: 0.1, decline: 0.9}
alert_budget: 20
rules:
  - {name: big, when: amount >= 250, action: route, queue: high-value, reason: Big amount}
"""


@pytest.fixture()
def made(tmp_path: Path) -> Iterator[CaseWorld]:
    with fast_argon2():
        made = world(f"sqlite:///{tmp_path / 'app.db'}")
        made.add_user("rita", Role.RISK_MANAGER)
        yield made
        made.close()


def test_a_clean_text_lints_clean_and_a_type_error_is_positioned() -> None:
    lint = policy_lint(policy_environment(["high-value"]))
    assert list(lint(GOOD, "p.yaml")) == []
    assert list(lint(GOOD.replace("amount >= 250", "amount >= 'x'"), "p.yaml")) == [
        "p.yaml:5:33: '>=' compares numbers; text compares with '==', '!=' or 'in'"
    ]


def test_queue_names_are_checked_only_when_given() -> None:
    lost = GOOD.replace("queue: high-value", "queue: nowhere")
    assert list(policy_lint(policy_environment())(lost, "p.yaml")) == []
    (error,) = policy_lint(policy_environment(["high-value", "general"]))(lost, "p.yaml")
    assert error.startswith("p.yaml:5:") and "unknown queue 'nowhere'" in error


def test_what_the_yaml_reader_refuses_is_a_positioned_problem_not_a_crash() -> None:
    lint = policy_lint(policy_environment())
    assert list(lint("name: a\n  \x00", "p.yaml")) == [
        "p.yaml:2:3: not valid YAML: special characters are not allowed"
    ]
    assert list(lint("[" * 2000 + "]" * 2000, "p.yaml")) == [
        "p.yaml:1:1: not valid here: the text is nested too deeply"
    ]


def test_the_stored_versions_refuse_what_does_not_lint(made: CaseWorld) -> None:
    versions = policy_versions(made.engine, policy_environment(["high-value"]), made.clock)
    rita = made.principal("rita")
    bad = GOOD.replace("amount >= 250", "amount >= 'x'")
    with pytest.raises(InvalidPolicyError) as raised:
        versions.draft(rita, "desk", bad, source="my.yaml")
    assert raised.value.errors == [
        "my.yaml:5:33: '>=' compares numbers; text compares with '==', '!=' or 'in'"
    ]
    assert versions.list() == []
    assert versions.draft(rita, "desk", GOOD).status is VersionStatus.DRAFT


def test_a_version_is_named_after_its_text() -> None:
    assert name_of(GOOD, "file") == "desk"
    assert name_of("[", "file") == "file" and name_of("- a", "file") == "file"
    assert name_of("name: " + "x" * 100, "file") == "x" * 64
