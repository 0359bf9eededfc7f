"""The active policy version, applied live by every scorer and reloaded without a restart.

:class:`LivePolicy` is the scorer's :class:`~fraudrisk.scoring.decisions.PolicyProvider`: it
holds the loaded active version (:class:`~fraudrisk.policy.live_version.AppliedVersion`) and swaps
it, as one assignment, when another version becomes active. A background thread asks the
policy database every ``policy.reload_seconds`` for the active version's number and digest (one
indexed row); only a change loads the text. A version that does not load is never applied: the
previous one keeps deciding, the error is logged once per version and counted
(``fraudrisk_policy_reload_failures_total``). Without an active stored version the model's
thresholds decide, with no rules, as before policies existed (decisions record no version).

The stream scorer, the Transaction API and the KServe scorer build theirs with
:func:`live_policy`. A shadow version (``policy.shadow_version``) runs beside the active one
(:mod:`fraudrisk.policy.shadow`), never returned or acted on.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Protocol

import sqlalchemy as sa
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy.engine import Engine

from fraudrisk.config import Settings
from fraudrisk.io.database import create_engine
from fraudrisk.policy.live_version import AppliedVersion, PolicyMetrics, policy_metrics
from fraudrisk.policy.shadow import ShadowRunner
from fraudrisk.policy.tables import POLICY_VERSIONS
from fraudrisk.scoring.decisions import PolicyInputs, PolicyOutcome

log = logging.getLogger(__name__)
#: A version as the poll sees it: (number, digest).
Head = tuple[int, str]


class VersionSource(Protocol):
    """Where the active version is found (the policy database, or a test double)."""

    def head(self) -> Head | None:
        """The active version's number and digest (None: no active version)."""
        ...

    def text(self, number: int) -> str:
        """The YAML of a version."""
        ...


class StoredVersions:
    """The versions of the ``policy_versions`` table (read only)."""

    def __init__(self, engine: Engine) -> None:
        """Read ``engine``'s database; a database without the table has no active version."""
        self.engine = engine
        self._missing_logged = False

    def head(self) -> Head | None:
        """The active version's number and digest: one row of the unique active index."""
        table = POLICY_VERSIONS
        query = sa.select(table.c.id, table.c.digest).where(table.c.status == "active")
        try:
            with self.engine.connect() as connection:
                row = connection.execute(query).one_or_none()
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as error:
            if "policy_versions" not in str(error):
                raise
            if not self._missing_logged:  # a store-only database: the model's thresholds decide
                log.info("no policy_versions table at %s: model thresholds decide", self._url())
                self._missing_logged = True
            return None
        return None if row is None else (int(row.id), str(row.digest))

    def text(self, number: int) -> str:
        """The YAML of version ``number``.

        Raises:
            LookupError: If there is no such version.
        """
        query = sa.select(POLICY_VERSIONS.c.document).where(POLICY_VERSIONS.c.id == number)
        with self.engine.connect() as connection:
            text = connection.execute(query).scalar_one_or_none()
        if text is None:
            raise LookupError(f"no policy version {number}")
        return str(text)

    def _url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)


class LivePolicy:
    """The active version for the scorers, swapped when another one is activated."""

    def __init__(
        self,
        source: VersionSource,
        epoch: dt.date,
        *,
        reload_seconds: float = 5.0,
        metrics: PolicyMetrics | None = None,
        shadow: ShadowRunner | None = None,
    ) -> None:
        """Nothing is loaded before :meth:`refresh`.

        Args:
            source: Where the active version is read.
            epoch: Day 0 of the lake (``tx_time_seconds``, ``tx_time_days``).
            reload_seconds: Seconds between two polls of :meth:`start`'s thread.
            metrics: Where reloads and decisions are counted.
            shadow: A version run in shadow beside the active one.
        """
        self.source, self.epoch, self.reload_seconds = source, epoch, reload_seconds
        self.metrics = metrics or policy_metrics()
        self.shadow = shadow
        self._current: AppliedVersion | None = None
        self._head: Head | None = None
        self._failed: set[Head] = set()
        self._poll_failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def version(self) -> int | None:
        """The number of the version applied now (None: the model's thresholds)."""
        current = self._current
        return None if current is None else current.version

    def current(self) -> AppliedVersion | None:
        """The version to apply now (one read: a batch sees one version throughout)."""
        return self._current

    def observe(self, inputs: PolicyInputs, outcome: PolicyOutcome) -> None:
        """Count the batch's decisions; hand it to the shadow, if any (never raises)."""
        self.metrics.count(outcome.version, "active", outcome.decision)
        if self.shadow is not None and outcome.version != self.shadow.version:
            self.shadow.submit(inputs, outcome)

    # ------------------------------------------------------------------------------ reload
    def refresh(self) -> bool:
        """Poll the source once; load and swap in a newly active version.

        Returns:
            True when the version applied changed.
        """
        try:
            head = self.source.head()
        except Exception as error:  # database down: the loaded version keeps deciding
            if not self._poll_failing:
                log.warning(
                    "cannot read the active policy version (%s): keeping v%s", error, self.version
                )
                self._poll_failing = True
            return False
        self._poll_failing = False
        if head == self._head or head in self._failed:
            return False
        if head is None:
            log.warning("no active policy version any more: the model's thresholds decide")
            self._head, self._current = None, None
            return True
        loaded = self._load(head)
        if loaded is None:
            return False
        self._head, self._current = head, loaded  # one assignment: a batch sees old or new
        self.metrics.version.set(head[0])
        self.metrics.reloads.inc()
        log.info("policy v%d (%s…) applied: %d rules", head[0], head[1][:12], len(loaded.rules))
        return True

    def _load(self, head: Head) -> AppliedVersion | None:
        """The version, loaded and checked; None (logged once, counted) when it cannot be."""
        number, digest = head
        try:
            return AppliedVersion.of_text(self.source.text(number), number, digest, self.epoch)
        except Exception as error:  # PolicyError, a lost row…: never applied
            self._failed.add(head)
            self.metrics.reload_failures.labels(str(number)).inc()
            log.error("policy v%d NOT applied, v%s keeps deciding: %s", number, self.version, error)
            return None

    def start(self) -> threading.Thread:
        """Poll every ``reload_seconds`` on a daemon thread until :meth:`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="policy-reload", daemon=True)
            self._thread.start()
        return self._thread

    def _poll(self) -> None:
        while not self._stop.wait(self.reload_seconds):
            try:
                self.refresh()
            except Exception:  # the thread must outlive any surprise
                log.exception("policy reload failed")

    def stop(self) -> None:
        """Stop polling, and the shadow's thread (what it has queued is finished)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.shadow is not None:
            self.shadow.close()


def live_policy(
    settings: Settings,
    registry: CollectorRegistry = REGISTRY,
    *,
    start: bool = True,
    engine_of: Callable[[str], Engine] = create_engine,
) -> LivePolicy | None:
    """The live policy of the settings (None when ``policy.live`` is off).

    The active version is loaded before this returns, so the first batch already applies it.

    Args:
        settings: ``policy.*`` and the platform database.
        registry: Where the policy metrics go.
        start: Start the reload thread.
        engine_of: Opens the policy database (tests).
    """
    config = settings.policy
    if not config.live:
        return None
    source = StoredVersions(engine_of(config.database_url or settings.db_url))
    metrics = policy_metrics(registry)
    epoch = dt.date.fromisoformat(settings.lake.epoch)
    shadow = None
    if config.shadow_version is not None:
        shadow = ShadowRunner.open(settings, source.text, config.shadow_version, epoch, metrics)
    live = LivePolicy(
        source, epoch, reload_seconds=config.reload_seconds, metrics=metrics, shadow=shadow
    )
    live.refresh()
    if start:
        live.start()
    return live
