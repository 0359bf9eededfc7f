"""The case service assembled from the settings: database, identity, routing, ingestion.

Also the policy versions the case API serves, linted against the routing file's queues.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading

from sqlalchemy.engine import Engine

from fraudrisk.cases.api import CaseServices
from fraudrisk.cases.baselines import FeatureTableBaselines
from fraudrisk.cases.ingest import CaseIngester
from fraudrisk.cases.labels import LabelOutbox
from fraudrisk.cases.routing import load_rules
from fraudrisk.cases.sla import escalate_breached
from fraudrisk.cases.work import CaseWork, Outbox
from fraudrisk.config import Settings
from fraudrisk.data.labels import LabelsTable, publish_labels
from fraudrisk.features.table import FeatureTable
from fraudrisk.identity.service import identity_for
from fraudrisk.io.database import open_database, utcnow
from fraudrisk.io.lake import Lake
from fraudrisk.policy.linting import policy_environment, policy_versions
from fraudrisk.policy.types import Environment

log = logging.getLogger(__name__)


def case_services(settings: Settings, engine: Engine | None = None) -> CaseServices:
    """The services of the case API over the configured database (migrated if embedded).

    Resolutions publish labels to the lake's labels table and, when
    ``cases.publish_labels_topic`` is set, to the ``labels`` topic; the case view's baselines
    come from the feature table.
    """
    engine = engine or open_database(settings.db_url)
    lake = Lake.open(settings.lake_uri, settings.lake)
    send = None
    if settings.cases.publish_labels_topic:
        send = functools.partial(publish_labels, settings)
    outbox = LabelOutbox(engine, LabelsTable.beside(lake.storage), send)
    baselines = FeatureTableBaselines(
        FeatureTable.open(settings.feature_table_uri, settings.lake), settings.cases.baseline_days
    )
    return CaseServices(
        engine,
        identity_for(settings, engine),
        CaseWork(engine, outbox=outbox),
        baselines=baselines,
        policies=policy_versions(engine, routed_policy_environment(settings)),
    )


def routed_policy_environment(settings: Settings) -> Environment:
    """The names policies may read, and the queues of the routing file as ``route`` targets.

    Raises:
        RoutingError: If the routing file is wrong.
        OSError: If it cannot be read.
    """
    routing = load_rules(settings.cases.routing_file or None)
    return policy_environment(queue.name for queue in routing.queues)


def case_ingester(settings: Settings, engine: Engine) -> CaseIngester:
    """The ingester of the configured routing rules and join window."""
    return CaseIngester(
        engine,
        load_rules(settings.cases.routing_file or None),
        dt.timedelta(hours=settings.cases.join_window_hours),
        settings.cases.ingest_batch,
        settings.cases.auto_assign,
    )


class IngestLoop:
    """A background round every ``interval_s`` until stopped.

    Each round ingests pending alerts, escalates breached SLAs and delivers the labels the
    outbox still holds.
    """

    def __init__(
        self, ingester: CaseIngester, interval_s: float = 2.0, outbox: Outbox | None = None
    ) -> None:
        self.ingester, self.interval_s, self.outbox = ingester, interval_s, outbox
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="case-ingest", daemon=True)

    def start(self) -> None:
        """Start ingesting."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.ingester.ingest_all()
                if done.alerts:
                    log.info("ingested %d alerts: %d cases opened", done.alerts, done.opened)
                escalated = escalate_breached(self.ingester.engine, utcnow())
                if escalated:
                    log.info("%d cases past their SLA escalated", len(escalated))
                if self.outbox is not None:
                    self.outbox.deliver()
            except Exception:  # the database may be down: log, retry next round
                log.exception("case ingestion failed; retrying in %.0f s", self.interval_s)
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        self._thread.join(timeout=30)
