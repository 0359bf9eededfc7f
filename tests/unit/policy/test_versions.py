"""Policy versions: four eyes, the life of a version, one active at most, rollback, the audit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.unit.cases.case_doubles import fast_argon2
from tests.unit.policy.desk import Desk, open_desk
from tests.unit.policy.desk import approved as desk_approved

from fraudrisk.identity.audit import AuditQuery
from fraudrisk.identity.errors import PermissionDeniedError
from fraudrisk.identity.roles import Role
from fraudrisk.policy.tables import POLICY_VERSIONS
from fraudrisk.policy.versions import (
    FourEyesError,
    InvalidPolicyError,
    StepNotAllowedError,
    VersionStatus,
    digest_of,
)

V1 = "thresholds: {review: 0.5, decline: 0.9}\n"
V2 = "thresholds: {review: 0.4, decline: 0.9}\n"


def lint(text: str, name: str) -> Sequence[str]:
    """A stand-in for the policy linter: a text with ``!`` has an error at its position."""
    at = text.find("!")
    return [] if at < 0 else [f"{name}:1:{at + 1}: unexpected '!'"]


@pytest.fixture()
def desk(tmp_path: Path) -> Iterator[Desk]:
    """Rita and rob (risk managers), ana (analyst), max (MLOps), and the stand-in linter."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    with fast_argon2():
        made, versions = open_desk(url, lint, ana=Role.ANALYST, max=Role.MLOPS_ENGINEER)
        yield made, versions
        made.close()


def approved(desk: Desk, text: str = V1) -> int:
    return desk_approved(desk, text, name="default")


def test_a_version_goes_live_only_after_another_risk_manager_approves(desk) -> None:
    made, versions = desk
    rita, rob = made.principal("rita"), made.principal("rob")
    draft = versions.draft(rita, "default", V1, note="first policy")
    assert (draft.number, draft.status, draft.author) == (1, VersionStatus.DRAFT, "rita")
    assert draft.digest == digest_of(V1)
    with pytest.raises(StepNotAllowedError, match="cannot activate version 1: it is draft"):
        versions.activate(rob, 1)
    versions.submit(rita, 1)
    with pytest.raises(FourEyesError, match="ask another risk manager to approve it"):
        versions.approve(rita, 1)  # her own
    assert versions.get(1).status is VersionStatus.PENDING
    assert versions.approve(rob, 1).status is VersionStatus.APPROVED
    assert versions.active() is None  # approved is not live yet
    live = versions.activate(rita, 1)  # the author may activate what another approved
    assert (live.status, live.approver, live.activated_by) == (VersionStatus.ACTIVE, "rob", "rita")
    assert versions.active() == live


def test_who_may_do_what(desk) -> None:
    made, versions = desk
    with pytest.raises(PermissionDeniedError, match="policy:author"):
        versions.draft(made.principal("ana"), "default", V1)
    with pytest.raises(PermissionDeniedError, match="policy:author"):
        versions.draft(made.principal("max"), "default", V1)
    number = versions.draft(made.principal("rita"), "default", V1).number
    versions.submit(made.principal("rita"), number)
    with pytest.raises(PermissionDeniedError, match="policy:approve"):
        versions.approve(made.principal("max"), number)
    with pytest.raises(PermissionDeniedError, match="policy:approve"):
        versions.reject(made.principal("ana"), number)
    assert versions.reject(made.principal("rita"), number, "withdrawn").status == "rejected"


def test_a_text_that_does_not_lint_is_never_stored(desk) -> None:
    made, versions = desk
    with pytest.raises(InvalidPolicyError) as raised:
        versions.draft(made.principal("rita"), "default", "rules: !oops\n")
    assert raised.value.errors == ["default:1:8: unexpected '!'"]
    assert versions.list() == []


def test_activating_retires_the_active_one_and_rollback_brings_it_back(desk) -> None:
    made, versions = desk
    first = approved(desk, V1)
    versions.activate(made.principal("rob"), first)
    second = approved(desk, V2)
    versions.activate(made.principal("rob"), second)
    assert versions.get(first).status is VersionStatus.RETIRED
    assert versions.active().number == second
    with pytest.raises(StepNotAllowedError, match="it is active"):
        versions.rollback(made.principal("rob"), second)
    back = versions.rollback(made.principal("rita"), first, note="v2 declines too much")
    assert back.status is VersionStatus.ACTIVE and back.number == first
    assert versions.get(second).status is VersionStatus.RETIRED
    assert [v.number for v in versions.list(VersionStatus.ACTIVE)] == [first]
    assert "-thresholds: {review: 0.5" in versions.diff(first, second)
    assert "+thresholds: {review: 0.4" in versions.diff(first, second)


def test_the_database_refuses_a_second_active_version(desk) -> None:
    made, versions = desk
    versions.activate(made.principal("rob"), approved(desk))
    other = approved(desk, V2)
    with pytest.raises(sa.exc.IntegrityError), made.engine.begin() as connection:
        connection.execute(
            POLICY_VERSIONS.update().where(POLICY_VERSIONS.c.id == other).values(status="active")
        )


def test_every_step_is_in_the_audit_log(desk) -> None:
    made, versions = desk
    number = approved(desk)
    versions.activate(made.principal("rob"), number)
    entries = made.identity.audit.read(AuditQuery(object_type="policy"))
    steps = [(e["actor"], e["action"]) for e in reversed(entries)]
    assert steps == [
        ("rita", "policy.draft"),
        ("rita", "policy.submit"),
        ("rob", "policy.approve"),
        ("rob", "policy.activate"),
    ]
    assert made.identity.audit.verify() is None
