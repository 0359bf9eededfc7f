"""Claim-next under contention on PostgreSQL: 20 analysts, 1,000 cases, each claimed once.

Each client is a thread with its own analyst, session and HTTP connection to the case API
served by uvicorn; they start together and claim until the queue is empty. ``FOR UPDATE SKIP
LOCKED`` lets each claim pass over the rows other claims hold instead of queueing behind them
(or, without the lock, taking the same row twice).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from tests.support.asgi import serve_in_thread as serving
from tests.unit.cases.case_doubles import DAY, CaseWorld, alert, world

from fraudrisk.cases.tables import CASES
from fraudrisk.identity.audit import AuditQuery
from fraudrisk.identity.roles import Role
from fraudrisk.identity.tables import USERS

pytestmark = pytest.mark.integration

CLIENTS, CASE_COUNT = 20, 1000
#: The whole run's bound; on a small runner it takes a few seconds.
BOUND_S = 90.0


@pytest.fixture(scope="module")
def desk(case_db: str) -> Iterator[CaseWorld]:
    made = world(case_db, pool_size=CLIENTS + 5)
    made.store.write(
        [alert(i, i, DAY, 10.0 + (i * 37) % 200, 0.5) for i in range(1, CASE_COUNT + 1)]
    )
    assert made.ingester().ingest_all().opened == CASE_COUNT
    for n in range(CLIENTS):
        made.add_user(f"analyst-{n:02d}", Role.ANALYST, ["general"])
    yield made
    made.close()


def test_twenty_clients_claim_every_case_exactly_once(desk: CaseWorld) -> None:
    names = [f"analyst-{n:02d}" for n in range(CLIENTS)]
    tokens = {name: desk.login(name) for name in names}
    claimed: dict[str, list[int]] = {name: [] for name in names}
    errors: list[str] = []
    start = threading.Barrier(CLIENTS)

    def claim_all(base: str, name: str) -> None:
        headers = {"Authorization": f"Bearer {tokens[name]}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            start.wait()
            while True:
                answer = client.post("/v1/queues/general/claim-next")
                if answer.status_code == 404:
                    return
                if answer.status_code != 200:
                    errors.append(f"{name}: {answer.status_code} {answer.text}")
                    return
                case = answer.json()
                if case["assignee"] != name:
                    errors.append(f"{name} got case {case['id']} assigned to {case['assignee']}")
                claimed[name].append(case["id"])

    began = time.monotonic()
    with serving(desk.app()) as base:
        threads = [threading.Thread(target=claim_all, args=(base, n)) for n in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=BOUND_S)
        assert not any(t.is_alive() for t in threads), f"claims still running after {BOUND_S} s"
    took = time.monotonic() - began

    assert errors == []
    every = [case_id for ids in claimed.values() for case_id in ids]
    with desk.engine.connect() as connection:
        case_ids = set(connection.execute(sa.select(CASES.c.id)).scalars())
        holder = dict(
            connection.execute(
                sa.select(CASES.c.id, USERS.c.username).join(
                    USERS, USERS.c.id == CASES.c.assignee_id
                )
            ).all()
        )
        statuses = Counter(connection.execute(sa.select(CASES.c.status)).scalars())
    assert len(every) == CASE_COUNT and set(every) == case_ids  # all claimed, each exactly once
    for name, ids in claimed.items():
        assert len(ids) == len(set(ids)), f"{name} got a case twice"
        assert all(holder[i] == name for i in ids)  # the database agrees with each answer
    assert statuses == {"assigned": CASE_COUNT}
    assert sum(1 for ids in claimed.values() if ids) > 1  # the claims really were shared
    audit = desk.identity.audit.read(AuditQuery(action="case.claim", limit=1000))
    assert len(audit) == CASE_COUNT and desk.identity.audit.verify() is None
    assert took < BOUND_S
    print(f"{CASE_COUNT} claims by {CLIENTS} clients in {took:.1f} s")
