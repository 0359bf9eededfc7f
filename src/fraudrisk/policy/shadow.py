"""A policy version run in shadow beside the active one: decided, counted, stored, never acted on.

The scorer hands every batch the active version decided to :meth:`ShadowRunner.submit` (a
queue append); one thread applies the shadow version to the *same* scored batch (same risk,
features and reason codes — the reasons of the rows the active version's thresholds flag),
counts its decisions (``fraudrisk_policy_decisions{role="shadow"}``) and stores them beside the
active ones in ``policy_shadow_decisions`` (:mod:`fraudrisk.alerts.shadow`). Nothing of it
reaches an answer, a topic, a score row or an alert. A full queue skips batches (counted); a
failure is logged and counted, never raised. ``fraudrisk policy shadow-report`` compares the
two (:mod:`fraudrisk.cli.policy_shadow`).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from fraudrisk.alerts.shadow import ShadowColumns, ShadowStore
from fraudrisk.config import Settings
from fraudrisk.policy.live_version import AppliedVersion, PolicyMetrics
from fraudrisk.policy.versions import digest_of
from fraudrisk.scoring.decisions import PolicyInputs, PolicyOutcome


class ShadowSink(Protocol):
    """Where shadow decisions go (the store, or a test double)."""

    def write(self, batch: ShadowColumns) -> None:
        """Store a batch of shadow decisions."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


log = logging.getLogger(__name__)
#: Batches waiting for the shadow beyond this are skipped (counted).
QUEUE_LIMIT = 256
_STOP = None


class ShadowRunner:
    """Applies one version in shadow on its own thread."""

    def __init__(self, policy: AppliedVersion, sink: ShadowSink, metrics: PolicyMetrics) -> None:
        """Start the thread; ``policy`` is the shadow version, ``sink`` where it is stored."""
        self.policy, self.sink, self.metrics = policy, sink, metrics
        self._queue: queue.Queue[tuple[PolicyInputs, PolicyOutcome] | None] = queue.Queue(
            QUEUE_LIMIT
        )
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="policy-shadow", daemon=True)
        self._thread.start()

    @classmethod
    def open(
        cls,
        settings: Settings,
        text_of: Callable[[int], str],
        number: int,
        epoch: dt.date,
        metrics: PolicyMetrics,
    ) -> ShadowRunner:
        """The shadow of stored version ``number``, stored in the settings' alert store.

        Raises:
            PolicyError: If the version does not load (a shadow that cannot run is a
                configuration error, reported at start).
        """
        text = text_of(number)
        policy = AppliedVersion.of_text(text, number, digest_of(text), epoch)
        log.info("policy v%d runs in shadow (%d rules)", number, len(policy.rules))
        return cls(policy, ShadowStore(settings.db_url), metrics)

    @property
    def version(self) -> int | None:
        """The shadow version's number."""
        return self.policy.version

    def submit(self, inputs: PolicyInputs, outcome: PolicyOutcome) -> None:
        """Queue a batch the active version decided (never blocks, never raises)."""
        try:
            with self._lock:
                self._queue.put_nowait((inputs, outcome))
                self._pending += 1
        except queue.Full:
            self.metrics.shadow_skipped.inc(len(inputs.risk))

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            inputs, active = item
            try:
                self._decide(inputs, active)
            except Exception:  # a shadow failure never reaches a caller
                self.metrics.shadow_skipped.inc(len(inputs.risk))
                log.exception("shadow policy v%s failed", self.version)
            finally:
                with self._lock:
                    self._pending -= 1

    def _decide(self, inputs: PolicyInputs, active: PolicyOutcome) -> None:
        shadow = self.policy.apply(inputs)
        self.metrics.count(self.version, "shadow", shadow.decision)
        batch = inputs.batch
        stamps = batch.seconds.astype("datetime64[s]").astype(dt.datetime).tolist()
        assert self.version is not None  # a shadow is a stored version
        self.sink.write(
            ShadowColumns(
                transaction_id=batch.transaction_id.tolist(),
                tx_datetime=stamps,
                tx_amount=batch.tx_amount.tolist(),
                risk_score=inputs.risk.tolist(),
                active_version=active.version,
                active_decision=active.decision.tolist(),
                shadow_version=self.version,
                shadow_decision=shadow.decision.tolist(),
                shadow_rules=shadow.rules,
            )
        )

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued batch is decided and stored (tests); True when drained."""
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._pending == 0

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish what is queued, stop the thread, close the sink."""
        self.drain(timeout_s)
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        self.sink.close()
