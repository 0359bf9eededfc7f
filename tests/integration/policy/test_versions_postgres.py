"""Policy versions on a real PostgreSQL server: racing activations leave exactly one active."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from tests.unit.cases.case_doubles import CaseWorld, fast_argon2, world
from tests.unit.policy.test_versions import lint

from fraudrisk.identity.roles import Role
from fraudrisk.policy.tables import POLICY_VERSIONS
from fraudrisk.policy.versions import PolicyVersions, StepNotAllowedError, VersionStatus

pytestmark = pytest.mark.integration


@pytest.fixture()
def desk(postgres_server: str) -> Iterator[tuple[CaseWorld, PolicyVersions]]:
    name = f"policy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{postgres_server.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with fast_argon2():
        made = world(url, pool_size=8)
        made.add_user("rita", Role.RISK_MANAGER)
        made.add_user("rob", Role.RISK_MANAGER)
        yield made, PolicyVersions(made.engine, lint, made.clock)
        made.close()
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_racing_activations_leave_exactly_one_version_active(desk) -> None:
    made, versions = desk
    rita, rob = made.principal("rita"), made.principal("rob")
    numbers = []
    for review in range(6):
        text = f"thresholds: {{review: 0.{review + 1}, decline: 0.9}}\n"
        number = versions.draft(rita, "default", text).number
        versions.submit(rita, number)
        versions.approve(rob, number)
        numbers.append(number)
    start, errors = threading.Barrier(len(numbers)), []

    def activate(number: int) -> None:
        start.wait()
        try:
            versions.activate(rob, number)
        except StepNotAllowedError as error:  # none expected: each starts from approved
            errors.append(error)

    threads = [threading.Thread(target=activate, args=(n,)) for n in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    statuses = [versions.get(n).status for n in numbers]
    assert statuses.count(VersionStatus.ACTIVE) == 1
    assert statuses.count(VersionStatus.RETIRED) == len(numbers) - 1
    retired = next(n for n, s in zip(numbers, statuses, strict=True) if s is VersionStatus.RETIRED)
    with pytest.raises(sa.exc.IntegrityError), made.engine.begin() as connection:
        connection.execute(  # the database itself refuses a second active version
            POLICY_VERSIONS.update().where(POLICY_VERSIONS.c.id == retired).values(status="active")
        )
