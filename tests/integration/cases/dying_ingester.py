"""A case ingester process that SIGKILLs itself inside a batch (run by test_stream_to_cases.py).

``python dying_ingester.py --die-in-batch K [--split-transactions]`` builds the ingester the way
``fraudrisk cases ingest`` does (the settings' database, routing rules, join window and batch
size), ingests a round every 0.2 s and kills itself in its K-th batch that holds alerts:

- by default it is the platform's ingester, killed after writing the batch's cases and case
  alerts and before marking the alerts ``cased``: inside the batch's one transaction, which the
  server rolls back when the connection drops;
- with ``--split-transactions`` (the negative control) it marks the batch's alerts ``cased``
  and commits, then is killed before it writes their cases in a second transaction: the
  alerts are lost — marked as taken, in no case.

It exits 3 if it has not died within ``--give-up-after`` seconds (never lingers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import time
from typing import Any

from sqlalchemy.engine import Connection

from fraudrisk.alerts.store import ALERTS
from fraudrisk.cases import ingest
from fraudrisk.cases.ingest import CASED, CaseIngester, Ingested
from fraudrisk.cases.routing import load_rules
from fraudrisk.config import get_settings
from fraudrisk.io.database import bulk_update, open_database


class DyingIngester(CaseIngester):
    """The platform's ingester, or its split-transaction variant, dying in one batch."""

    def __init__(self, *args: Any, die_in_batch: int, split: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.die_in_batch, self.split, self.batches = die_in_batch, split, 0

    def ingest_batch(self) -> Ingested:
        """The real batch (one transaction), or the variant's: mark, commit, then case."""
        if not self.split:
            return super().ingest_batch()
        with self.engine.begin() as connection:
            alerts = ingest._pending(connection, self.batch)
            if not alerts:
                return Ingested()
            cased = [{"transaction_id": a.transaction_id, "status": CASED} for a in alerts]
            bulk_update(connection, ALERTS, "transaction_id", cased)
        self._count_batch()  # dies here: the marks are committed, the cases never written
        with self.engine.begin() as connection:
            return self._into_cases(connection, alerts)

    def _into_cases(self, connection: Connection, alerts: list[Any]) -> Ingested:
        done = super()._into_cases(connection, alerts)
        if not self.split:
            self._count_batch()  # dies here: cases written, alerts not yet marked, no commit
        return done

    def _count_batch(self) -> None:
        self.batches += 1
        if self.batches >= self.die_in_batch:
            print(f"dying in batch {self.batches}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    """Ingest every 0.2 s until the chosen batch kills the process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--die-in-batch", type=int, required=True)
    parser.add_argument("--split-transactions", action="store_true")
    parser.add_argument("--give-up-after", type=float, default=180.0)
    args = parser.parse_args()
    settings = get_settings()
    ingester = DyingIngester(
        open_database(settings.db_url),
        load_rules(settings.cases.routing_file or None),
        dt.timedelta(hours=settings.cases.join_window_hours),
        settings.cases.ingest_batch,
        die_in_batch=args.die_in_batch,
        split=args.split_transactions,
    )
    print("ingesting", flush=True)
    deadline = time.monotonic() + args.give_up_after
    while time.monotonic() < deadline:
        ingester.ingest_all()
        time.sleep(0.2)
    raise SystemExit(3)


if __name__ == "__main__":
    main()
