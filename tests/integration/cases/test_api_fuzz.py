"""Schemathesis over the case API's OpenAPI on PostgreSQL: no request makes it answer 5xx.

Every operation gets generated requests — valid ones and, separately, ones that break the
schema — sent with a valid admin token and, in a second run, a valid analyst token (a member of
one queue), against a database holding cases, so that generated ids sometimes hit real cases.
The app runs in process (Schemathesis's ASGI transport). Bounded: 20 valid and 10 invalid
examples per operation and role, no shrinking (a failure lists the request as sent).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from tests.unit.cases.case_doubles import DAY, CaseWorld, alert, world

from fraudrisk.identity.roles import Role

pytestmark = pytest.mark.integration

EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}
#: The routes that end the session they are called with get a fresh one of a second user.
ENDS_SESSION = {"/v1/auth/logout", "/v1/auth/logout-everywhere"}


@dataclass
class Fuzzed:
    world: CaseWorld
    schema: Any
    seen: dict[tuple[str, GenerationMode], set[int]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def fuzzed(case_db: str) -> Iterator[Fuzzed]:
    made = world(case_db)
    made.store.write(
        [alert(c, c, DAY, 20.0 + c, 0.4) for c in range(1, 21)]
        + [alert(c, c, DAY, 20.0 + c, 0.4, "decline") for c in range(21, 31)]
    )
    made.ingester().ingest_all()
    for role in (Role.ADMIN, Role.ANALYST):
        made.add_user(f"fz-{role.value}", role, ["general"])
        made.add_user(f"fz-{role.value}-2", role, ["general"])
    schema = schemathesis.openapi.from_asgi("/openapi.json", made.app())
    yield Fuzzed(made, schema)
    made.close()


def fuzz(fuzzed: Fuzzed, operation: Any, username: str, mode: GenerationMode) -> list[str]:
    """Send generated requests to one operation; returns each 5xx answer, described."""
    failures: list[str] = []
    main = fuzzed.world.token(username)

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def send(case: Any) -> None:
        token = main
        if operation.path in ENDS_SESSION:
            token = fuzzed.world.login(f"{username}-2")
        if operation.path == "/v1/events":  # a stream lasts `timeout` seconds: keep it short
            case.query = {**(case.query or {}), "timeout": 0.05}
        try:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
        except Exception as error:  # in process, a 500 is the app's exception
            failures.append(
                f"{operation.label} ({mode.value}) → {type(error).__name__}: {error!s:.200} — "
                f"path={case.path_parameters} query={case.query} body={case.body!r:.200}"
            )
            return
        fuzzed.seen.setdefault((operation.label, mode), set()).add(response.status_code)
        if response.status_code >= 500:
            failures.append(
                f"{operation.label} ({mode.value}) → {response.status_code}: "
                f"path={case.path_parameters} query={case.query} body={case.body!r} "
                f"answer={response.text[:300]}"
            )

    try:
        send()
    except hypothesis.errors.Unsatisfiable:
        if mode is not GenerationMode.NEGATIVE:
            raise
        # nothing of the operation can break its schema (no parameter, no body): none to send
    return failures


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ANALYST], ids=lambda r: r.value)
def test_no_generated_request_gets_a_server_error(fuzzed: Fuzzed, role: Role) -> None:
    username = f"fz-{role.value}"
    failures: list[str] = []
    fuzzed.seen.clear()
    operations = [result.ok() for result in fuzzed.schema.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:
        for mode in EXAMPLES:
            failures += fuzz(fuzzed, operation, username, mode)
    assert failures == [], "\n".join(failures)
    # The token was valid throughout: valid requests were never refused as unauthenticated.
    # (Invalid ones may be: Schemathesis's negative mode also leaves the token out.)
    positive = {label: codes for (label, mode), codes in fuzzed.seen.items() if mode.is_positive}
    assert positive["GET /v1/me"] == {200}
    signed_in = {label: c for label, c in positive.items() if label != "POST /v1/auth/login"}
    assert all(401 not in codes for codes in signed_in.values()), signed_in
    assert 200 in positive["GET /v1/cases"] and 200 in positive["GET /v1/queues"]
    if role is Role.ADMIN:
        assert 200 in positive["GET /v1/audit"] and 200 in positive["GET /v1/users"]
    else:
        assert positive["GET /v1/users"] == {403}
