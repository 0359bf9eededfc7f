"""Sync mode: transactions scored in process by the served variants (champion, canary, ...).

At start the champion of the serving settings is loaded; if it cannot be, the fallback rules
decide (every answer flagged ``fallback``) while the model is retried in the background. If the
Feast online state cannot be opened either, the rules run on the amount alone until it can
(:class:`RetryingFeastState`). The active decision policy version decides, reloaded live
(:mod:`fraudrisk.policy.live`); every answer carries its ``policy_version``. Scoring runs on
one worker thread: the event loop stays free
for other requests and WebSocket pushes, and the state store is never used concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from prometheus_client import CollectorRegistry

from fraudrisk.config import Settings
from fraudrisk.policy.live import live_policy
from fraudrisk.schemas import OPTIONAL_COLUMNS, Transaction
from fraudrisk.scoring.scorer import RowScores
from fraudrisk.scoring.state_reader import EntityStates, FeastStateReader, StateReader
from fraudrisk.scoring.vectors import TransactionBatch
from fraudrisk.serving.prometheus import scorer_metrics
from fraudrisk.serving.variants import ServedVariants, ServiceSpec
from fraudrisk.serving.wire_protocol import transaction_batch

log = logging.getLogger(__name__)
ModelState = Literal["loaded", "rules_only", "not_loaded"]


class StateUnavailableError(RuntimeError):
    """The online state store cannot be opened (yet)."""


class RetryingFeastState:
    """The Feast online state, opened on first use and retried every ``retry_s`` until it is."""

    def __init__(self, settings: Settings, retry_s: float) -> None:
        """Nothing is opened before the first read."""
        self.settings = settings
        self.retry_s = retry_s
        self._reader: StateReader | None = None
        self._last_try = -float("inf")
        self._lock = threading.Lock()

    def read(self, customer_ids: Iterable[int], terminal_ids: Iterable[int]) -> EntityStates:
        """States from Feast.

        Raises:
            StateUnavailableError: While the store cannot be opened.
        """
        return self._open().read(customer_ids, terminal_ids)

    def warm_up(self) -> None:
        """Open the store now, at start-up: opening it takes seconds a request must not wait."""
        with contextlib.suppress(StateUnavailableError):  # logged; the requests retry it
            self._open()

    def _open(self) -> StateReader:
        with self._lock:
            if self._reader is None and time.monotonic() - self._last_try >= self.retry_s:
                self._last_try = time.monotonic()
                try:
                    self._reader = FeastStateReader.from_settings(self.settings)
                except Exception as error:  # missing repo, store down: retried later
                    log.warning("online state unavailable (%s): %s", type(error).__name__, error)
            if self._reader is None:
                raise StateUnavailableError("the Feast online state cannot be opened")
            return self._reader


def default_variants(settings: Settings, registry: CollectorRegistry) -> ServedVariants:
    """The variants of the serving settings, over the (retrying) Feast online state."""
    state = RetryingFeastState(settings, settings.api.model_retry_s)
    spec = ServiceSpec.from_settings(settings)
    metrics = scorer_metrics(registry)
    policy = live_policy(settings, registry)
    return ServedVariants(
        spec, settings, states=lambda _settings: state, metrics=metrics, policy=policy
    )


@dataclass(frozen=True)
class Scored:
    """A scored request: the batch and its scores (what the store keeps), and the answer rows."""

    batch: TransactionBatch
    scores: RowScores
    rows: list[dict[str, Any]]


class ScoringService:
    """Scores validated transactions with the served variants, off the event loop."""

    def __init__(self, variants: ServedVariants, retry_s: float) -> None:
        """Wrap served variants (loaded or not: :meth:`start` loads them)."""
        self.variants = variants
        self.retry_s = retry_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="api-score")

    def start(self) -> None:
        """Load the model (or serve the fallback rules while it is retried), then warm up."""
        if not self.variants.scorers and not self.variants.load():
            self.variants.serve_rules_only()
            self.variants.keep_loading(self.retry_s)
        self._warm_up()

    def _warm_up(self) -> None:
        """Open the entity state store and score one made-up transaction with each variant.

        The first request would otherwise pay for opening the online store (seconds) and the
        model's first call; this one is not published, stored or counted in the metrics.
        """
        zero = np.zeros(1, dtype=np.int64)
        probe = TransactionBatch(zero, zero, zero, zero, np.ones(1, dtype=np.float64))
        for scorer in self.variants.scorers.values():
            warm_up = getattr(scorer.states, "warm_up", None)
            if callable(warm_up):
                warm_up()
            scorer.score(probe, observe=False)  # a failure falls back to the rules

    def close(self) -> None:
        """Stop the scoring thread."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def state(self) -> ModelState:
        """Whether a model serves, the fallback rules do, or nothing yet."""
        if self.variants.ready:
            return "loaded"
        return "rules_only" if self.variants.scorers else "not_loaded"

    def versions(self) -> list[str]:
        """The model versions serving now."""
        return [v for v in self.variants.versions() if v]

    async def score(self, transactions: Sequence[Transaction]) -> Scored:
        """The batch's scores, and one result row per transaction in order.

        A row holds the fields of ``ScoreResult`` plus the entity ids.

        Raises:
            RuntimeError: If nothing can score (not started).
        """
        if not self.variants.scorers:
            raise RuntimeError("no scorer loaded")
        batch = transaction_batch(transactions)
        fields = {name: [getattr(t, name) for t in transactions] for name in OPTIONAL_COLUMNS}
        loop = asyncio.get_running_loop()
        scores = await loop.run_in_executor(self._pool, self.variants.score, batch, fields)
        return Scored(batch, scores, _rows(transactions, scores))


def _rows(transactions: Sequence[Transaction], scores: RowScores) -> list[dict[str, Any]]:
    policy = scores.policy_version or [None] * len(scores)
    return [
        {
            "transaction_id": t.transaction_id,
            "customer_id": t.customer_id,
            "terminal_id": t.terminal_id,
            "tx_datetime": t.tx_datetime.isoformat(),
            "tx_amount": t.tx_amount,
            "risk_score": float(scores.risk_score[i]),
            "decision": scores.decision[i],
            "reason_codes": json.loads(scores.reason_codes[i]),
            "model_name": scores.model_name[i],
            "model_version": scores.model_version[i],
            "variant": scores.variant[i],
            "fallback": bool(scores.fallback[i]),
            "policy_version": policy[i],
        }
        for i, t in enumerate(transactions)
    ]


#: Fields of a sync answer (the event published to subscribers has the entity fields too).
RESULT_FIELDS = (
    "transaction_id",
    "risk_score",
    "decision",
    "reason_codes",
    "model_name",
    "model_version",
    "variant",
    "fallback",
    "policy_version",
)


def result_of(row: dict[str, Any]) -> dict[str, Any]:
    """The ``ScoreResult`` part of a scored row."""
    return {name: row[name] for name in RESULT_FIELDS}
