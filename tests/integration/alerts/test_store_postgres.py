"""The alert store on a real PostgreSQL server: the same idempotent upserts as on SQLite."""

from __future__ import annotations

import pytest
from tests.unit.alerts.test_store import record

from fraudrisk.alerts.store import AlertStore

pytestmark = pytest.mark.integration


def test_replayed_batches_change_nothing_on_postgres(postgres_server: str) -> None:
    store = AlertStore(
        postgres_server.replace("postgresql://", "postgresql+psycopg://") + "/alerts"
    )
    try:
        batch = [record(i, "decline" if i % 4 == 0 else "approve", 0.9, 100) for i in range(200)]
        first = store.write(batch)
        again = store.write(batch)
        assert (first.scores, first.alerts) == (200, 50)
        assert (again.scores, again.alerts) == (0, 0)
        assert store.count("scores") == 200 and store.count("alerts") == 50
        assert store.top_alerts(3)[0]["priority"] == pytest.approx(90.0)
    finally:
        store.close()
