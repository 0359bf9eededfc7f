"""The served variants of one model name: stable + optional candidate, split and shadow.

:class:`ServedVariants` loads the stable model (required) and the candidate of a canary, A/B or
shadow split (optional: one that cannot be loaded gets no traffic, as a KServe revision that
never became ready), routes each batch, records per-variant metrics and scores the shadow off
the request path. A new spec is loaded beside the serving one and swapped in as a whole. The
KServe model (:mod:`fraudrisk.serving.kserve_model`) and the stream scorer share it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fraudrisk.config import Settings
from fraudrisk.scoring.decisions import PolicyProvider
from fraudrisk.scoring.model import ModelLoadError, load_model
from fraudrisk.scoring.scorer import RowScores, Scorer
from fraudrisk.scoring.state_reader import FeastStateReader, StateReader
from fraudrisk.scoring.vectors import TransactionBatch
from fraudrisk.serving.prometheus import ScorerMetrics, scorer_metrics
from fraudrisk.serving.router import Router, TrafficSplit
from fraudrisk.vocab import MODEL_NAME, STABLE

log = logging.getLogger(__name__)
#: Shadow batches waiting to be scored beyond this are skipped (counted, logged).
SHADOW_QUEUE_LIMIT = 256


@dataclass(frozen=True)
class ServiceSpec:
    """What one ``fraud-risk`` service serves: the stable model and an optional candidate."""

    stable_uri: str
    candidate_uri: str | None = None
    split: TrafficSplit = field(default_factory=TrafficSplit)
    name: str = MODEL_NAME

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceSpec:
        """The spec of ``FRAUDRISK_SERVING__*`` (what a pod of the InferenceService runs)."""
        serving = settings.serving
        split = TrafficSplit(serving.traffic_mode, serving.candidate_percent, serving.ab_key)
        return cls(serving.model_uri, serving.candidate_uri or None, split, serving.model_name)


@dataclass(frozen=True)
class _Active:
    """What serves now: replaced as a whole, never edited in place."""

    spec: ServiceSpec
    scorers: dict[str, Scorer]
    router: Router


def settle_heap() -> None:
    """Collect, then freeze what is loaded (models, Feast, MLflow) out of the GC's sight.

    A loaded scorer holds ~450,000 objects; a full collection over them paused requests for
    90-300 ms (the p99 of the serving benchmark). Frozen objects are never scanned again.
    """
    gc.collect()
    gc.freeze()


class ServedVariants:
    """The models behind one served name, their traffic split and their metrics."""

    def __init__(
        self,
        spec: ServiceSpec,
        settings: Settings,
        states: Callable[[Settings], StateReader] = FeastStateReader.from_settings,
        metrics: ScorerMetrics | None = None,
        policy: PolicyProvider | None = None,
    ) -> None:
        """Prepare the variants; nothing is loaded before :meth:`load`.

        ``policy`` decides instead of the models' thresholds (None: their thresholds).
        """
        self.name = spec.name
        self.policy = policy
        self.ready = False
        self.settings = settings
        self._states = states
        self.metrics = metrics or scorer_metrics()
        self._active = _Active(spec, {}, Router(spec.split, has_candidate=False))
        self.load_error = ""
        self._shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._shadow_pending = 0
        self._lock = threading.Lock()
        self._load_began = False
        self._first_load = threading.Event()  # set once the first load attempt has ended

    @property
    def spec(self) -> ServiceSpec:
        """The spec being served (or being loaded, before the first success)."""
        return self._active.spec

    @property
    def states_factory(self) -> Callable[[Settings], StateReader]:
        """How this model opens its online state reader (each load opens one)."""
        return self._states

    @property
    def scorers(self) -> dict[str, Scorer]:
        """The loaded variants by name."""
        return self._active.scorers

    # ----------------------------------------------------------------------------- loading
    def load(self) -> bool:
        """Load the stable model (required) and the candidate (optional); sets ``ready``."""
        self._load_began = True
        try:
            self._install(self.spec, *self._build(self.spec))
        except Exception as error:  # any cause keeps the server unready
            self.load_error = f"{type(error).__name__}: {error}"
            log.error(
                "model %s NOT READY: cannot load %s (%s); no traffic until it loads",
                self.name,
                self.spec.stable_uri,
                self.load_error,
            )
            self.ready = False
            return False
        finally:
            self._first_load.set()
        return True

    @property
    def load_began(self) -> bool:
        """Whether a load was ever attempted (or is under way)."""
        return self._load_began

    def begin_load(self) -> None:
        """Note that a first load is under way (another thread runs it)."""
        self._load_began = True

    def wait_first_load(self, timeout_s: float) -> bool:
        """Wait until the first :meth:`load` ended (at once if none began); False on timeout."""
        return not self._load_began or self._first_load.wait(timeout_s)

    def reconfigure(self, spec: ServiceSpec) -> bool:
        """Serve a new spec (models and split) once it is loaded; on failure keep the old one.

        Returns:
            True when the new spec serves now.
        """
        try:
            built = self._build(spec)
        except Exception as error:  # the running configuration keeps serving
            log.error(
                "new spec not applied, still serving %s: cannot load %s (%s)",
                self.describe(),
                spec.stable_uri,
                error,
            )
            return False
        self._install(spec, *built)
        return True

    def _build(self, spec: ServiceSpec) -> tuple[dict[str, Scorer], Router]:
        """Load every model of ``spec`` (raises when the stable one cannot be loaded)."""
        states = self._states(self.settings)
        stable = Scorer(
            load_model(self.settings, spec.stable_uri),
            states,
            self.settings.serving,
            variant=STABLE,
            policy=self.policy,
        )
        scorers = {STABLE: stable}
        candidate = self._load_candidate(spec, states)
        if candidate is not None:
            scorers[candidate.variant] = candidate
        return scorers, Router(spec.split, has_candidate=candidate is not None)

    def _install(self, spec: ServiceSpec, scorers: dict[str, Scorer], router: Router) -> None:
        """Swap in loaded scorers and their router."""
        self._active = _Active(spec, scorers, router)  # one assignment: requests see old or new
        self.load_error, self.ready = "", True
        settle_heap()
        log.info("model %s ready: %s", self.name, self.describe())

    def _load_candidate(self, spec: ServiceSpec, states: StateReader) -> Scorer | None:
        uri = spec.candidate_uri
        if not uri:
            return None
        try:
            model = load_model(self.settings, uri)
            variant = spec.split.candidate_variant
            return Scorer(model, states, self.settings.serving, variant, self.policy)
        except ModelLoadError as error:
            log.error(
                "candidate %s not loaded (%s): the stable model takes all traffic", uri, error
            )
            return None

    def serve_rules_only(self) -> None:
        """Until a model loads, decide by the fallback rules (flagged ``fallback``)."""
        states = self._states(self.settings)
        spec = self._active.spec
        rules = Scorer(None, states, self.settings.serving, variant=STABLE, policy=self.policy)
        self._active = _Active(spec, {STABLE: rules}, Router(spec.split, has_candidate=False))
        log.warning("model %s: rules-only decisions until %s loads", self.name, spec.stable_uri)

    def keep_loading(self, retry_seconds: float) -> threading.Thread:
        """Retry :meth:`load` in the background every ``retry_seconds`` until it succeeds."""

        def retry() -> None:
            while not self.ready:
                time.sleep(retry_seconds)
                self.load()

        thread = threading.Thread(target=retry, name="model-loader", daemon=True)
        thread.start()
        return thread

    def versions(self) -> list[str]:
        """The model versions serving now (stable first)."""
        return [scorer.version for scorer in self.scorers.values()]

    def describe(self) -> str:
        """One line: which versions serve which share."""
        parts = [f"{name}=v{scorer.version}" for name, scorer in self.scorers.items()]
        split = self.spec.split
        if len(self.scorers) > 1:
            parts.append(f"mode={split.mode} percent={split.percent}")
        return " ".join(parts)

    def score(self, batch: TransactionBatch, fields: Mapping[str, Any] | None = None) -> RowScores:
        """Route and score a validated batch (the shadow, if any, is scored afterwards).

        ``fields``: more transaction columns (e.g. ``channel``) the policy's rules may read.
        """
        active = self._active
        assignment = active.router.assign(batch)
        parts = []
        for variant, rows in assignment.rows.items():
            began = time.perf_counter()
            whole = len(rows) == len(batch)
            part = batch if whole else batch.take(rows)
            scorer = active.scorers[variant]
            try:
                scored = scorer.score(part, fields if whole else _take(fields, rows))
            except Exception:
                self.metrics.error(self.name, variant, "internal")
                raise
            if scored.fallback and scorer.model is not None:  # the model or store failed
                self.metrics.error(self.name, variant, "fallback")
            self.metrics.observe(
                self.name,
                variant,
                time.perf_counter() - began,
                scored.risk_score,
                scored.decision,
                scored.fallback,
            )
            parts.append((rows, scored))
        scores = RowScores.merge(len(batch), parts)
        if assignment.shadow:
            self._submit_shadow(active, batch, scores)
        return scores

    # ----------------------------------------------------------------------------- shadow
    def _submit_shadow(self, active: _Active, batch: TransactionBatch, served: RowScores) -> None:
        shadow = active.scorers.get(active.spec.split.candidate_variant)
        if shadow is None:
            return
        with self._lock:
            if self._shadow_pending >= SHADOW_QUEUE_LIMIT:
                self.metrics.error(self.name, shadow.variant, "shadow_skipped")
                log.warning("shadow queue full: %d transactions not shadow-scored", len(batch))
                return
            self._shadow_pending += 1
        self._shadow_pool.submit(self._run_shadow, shadow, batch, served)

    def _run_shadow(self, shadow: Scorer, batch: TransactionBatch, served: RowScores) -> None:
        try:
            began = time.perf_counter()
            scored = shadow.score(batch)
            self.metrics.observe(
                self.name,
                shadow.variant,
                time.perf_counter() - began,
                scored.risk_score,
                scored.decision,
                scored.fallback,
            )
            agree = int(np.sum(scored.decision == np.asarray(served.decision)))
            log.info(
                "shadow v%s scored %d transactions: %d same decisions as served, "
                "mean risk %.4f vs %.4f",
                shadow.version,
                len(batch),
                agree,
                float(scored.risk_score.mean()),
                float(served.risk_score.mean()),
            )
        except Exception:  # a shadow failure never reaches a caller
            self.metrics.error(self.name, shadow.variant, "internal")
            log.exception("shadow scoring failed")
        finally:
            with self._lock:
                self._shadow_pending -= 1

    def drain_shadow(self, timeout_s: float = 10.0) -> bool:
        """Wait until queued shadow batches are scored (tests, shutdown); True when drained."""
        deadline = time.monotonic() + timeout_s
        while self._shadow_pending and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._shadow_pending == 0


def _take(
    fields: Mapping[str, Any] | None, rows: np.ndarray[Any, np.dtype[np.int64]]
) -> dict[str, Any] | None:
    """The rows of each field column."""
    if not fields:
        return None
    return {name: np.asarray(values, dtype=object)[rows] for name, values in fields.items()}
