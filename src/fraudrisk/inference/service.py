"""The KServe model of the scorer, and the ModelServer around it.

:class:`FraudRiskModel` is a ``kserve.Model``: ``load`` fetches the stable model (and the
candidate of a canary, A/B or shadow split) and the online store; ``predict`` answers KServe
V1 bodies (``{"instances": [...]}``) and V2 ``InferRequest`` objects. A model that cannot be
loaded leaves the server unready — its ready endpoints answer 503 and inference is refused —
with one log line saying why; loading is retried in the background until it succeeds. A
candidate that cannot be loaded gets no traffic (as a KServe revision that never became
ready), and the stable model answers everything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from fraudrisk.config import Settings
from fraudrisk.inference.features import TransactionBatch
from fraudrisk.inference.metrics import ScorerMetrics, scorer_metrics
from fraudrisk.inference.model import ModelLoadError, load_model
from fraudrisk.inference.protocol import (
    V2_INPUT_METADATA,
    V2_OUTPUT_METADATA,
    InvalidRequestError,
    parse_v1,
    parse_v2,
    v1_predictions,
    v2_outputs,
)
from fraudrisk.inference.router import STABLE, Router, TrafficSplit
from fraudrisk.inference.scorer import RowScores, Scorer
from fraudrisk.inference.state import FeastStateReader, StateReader

log = logging.getLogger(__name__)
#: Shadow batches waiting to be scored beyond this are skipped (counted, logged).
SHADOW_QUEUE_LIMIT = 256


@dataclass(frozen=True)
class ServiceSpec:
    """What one ``fraud-risk`` service serves: the stable model and an optional candidate."""

    stable_uri: str
    candidate_uri: str | None = None
    split: TrafficSplit = field(default_factory=TrafficSplit)
    name: str = "fraud-risk"

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceSpec:
        """The spec of ``FRAUDRISK_SERVING__*`` (what a pod of the InferenceService runs)."""
        serving = settings.serving
        split = TrafficSplit(serving.traffic_mode, serving.candidate_percent, serving.ab_key)
        return cls(serving.model_uri, serving.candidate_uri or None, split, serving.model_name)


class FraudRiskModel(Model):  # type: ignore[misc]  # kserve is untyped
    """The scorer as a KServe model (V1 and V2 protocols, canary/A-B/shadow variants)."""

    def __init__(
        self,
        spec: ServiceSpec,
        settings: Settings,
        states: Callable[[Settings], StateReader] = FeastStateReader.from_settings,
        metrics: ScorerMetrics | None = None,
    ) -> None:
        """Prepare the model; nothing is loaded before :meth:`load`."""
        super().__init__(spec.name)
        self.spec = spec
        self.settings = settings
        self._states = states
        self.metrics = metrics or scorer_metrics()
        self.scorers: dict[str, Scorer] = {}
        self.router = Router(spec.split, has_candidate=False)
        self.load_error = ""
        self._shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._shadow_pending = 0
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------- loading
    def load(self) -> bool:
        """Load the stable model (required) and the candidate (optional); sets ``ready``."""
        try:
            states = self._states(self.settings)
            stable = Scorer(load_model(self.settings, self.spec.stable_uri), states,
                            self.settings.serving, variant=STABLE)  # fmt: skip
        except Exception as error:  # any cause keeps the server unready
            self.load_error = f"{type(error).__name__}: {error}"
            log.error("model %s NOT READY: cannot load %s (%s); no traffic until it loads",
                      self.name, self.spec.stable_uri, self.load_error)  # fmt: skip
            self.ready = False
            return False
        scorers = {STABLE: stable}
        candidate = self._load_candidate(states)
        if candidate is not None:
            scorers[candidate.variant] = candidate
        self.scorers = scorers
        self.router = Router(self.spec.split, has_candidate=candidate is not None)
        self.load_error, self.ready = "", True
        log.info("model %s ready: %s", self.name, self.describe())
        return True

    def _load_candidate(self, states: StateReader) -> Scorer | None:
        uri = self.spec.candidate_uri
        if not uri:
            return None
        try:
            model = load_model(self.settings, uri)
            return Scorer(model, states, self.settings.serving, self.spec.split.candidate_variant)
        except ModelLoadError as error:
            log.error("candidate %s not loaded (%s): the stable model takes all traffic",
                      uri, error)  # fmt: skip
            return None

    def keep_loading(self, retry_seconds: float) -> threading.Thread:
        """Retry :meth:`load` in the background every ``retry_seconds`` until it succeeds."""

        def retry() -> None:
            while not self.ready:
                time.sleep(retry_seconds)
                self.load()

        thread = threading.Thread(target=retry, name="model-loader", daemon=True)
        thread.start()
        return thread

    def describe(self) -> str:
        """One line: which versions serve which share."""
        parts = [f"{name}=v{scorer.version}" for name, scorer in self.scorers.items()]
        split = self.spec.split
        if len(self.scorers) > 1:
            parts.append(f"mode={split.mode} percent={split.percent}")
        return " ".join(parts)

    # --------------------------------------------------------------------------- metadata
    def get_input_types(self) -> list[dict[str, Any]]:
        """V2 input metadata (one tensor per transaction field)."""
        return V2_INPUT_METADATA

    def get_output_types(self) -> list[dict[str, Any]]:
        """V2 output metadata."""
        return V2_OUTPUT_METADATA

    # -------------------------------------------------------------------------- inference
    def predict(
        self, payload: dict[str, Any] | InferRequest, headers: dict[str, str] | None = None
    ) -> dict[str, Any] | InferResponse:
        """Score a V1 body or a V2 request; invalid requests raise ``InvalidInput`` (400)."""
        v2 = isinstance(payload, InferRequest)
        try:
            batch = (
                parse_v2(payload.inputs) if isinstance(payload, InferRequest) else parse_v1(payload)
            )
        except InvalidRequestError as error:
            self.metrics.error(self.name, "none", "invalid")
            raise InvalidInput(str(error)) from None
        scores = self.score(batch)
        if v2:
            return self._v2_response(payload, scores)
        return v1_predictions(batch, scores)

    def score(self, batch: TransactionBatch) -> RowScores:
        """Route and score a validated batch (the shadow, if any, is scored afterwards)."""
        assignment = self.router.assign(batch)
        parts = []
        for variant, rows in assignment.rows.items():
            began = time.perf_counter()
            scored = self.scorers[variant].score(batch.take(rows) if len(rows) < len(batch)
                                                 else batch)  # fmt: skip
            self.metrics.observe(self.name, variant, time.perf_counter() - began,
                                 scored.risk_score, scored.decision, scored.fallback)  # fmt: skip
            parts.append((rows, scored))
        scores = RowScores.merge(len(batch), parts)
        if assignment.shadow:
            self._submit_shadow(batch, scores)
        return scores

    def _v2_response(self, request: InferRequest, scores: RowScores) -> InferResponse:
        outputs = [
            InferOutput(name=o["name"], shape=o["shape"], datatype=o["datatype"], data=o["data"])
            for o in v2_outputs(scores)
        ]
        versions = sorted(set(scores.model_version))
        return InferResponse(
            response_id=request.id or "",
            model_name=self.name,
            model_version=versions[0] if len(versions) == 1 else ",".join(versions),
            infer_outputs=outputs,
        )

    # ----------------------------------------------------------------------------- shadow
    def _submit_shadow(self, batch: TransactionBatch, served: RowScores) -> None:
        shadow = self.scorers.get(self.spec.split.candidate_variant)
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
            self.metrics.observe(self.name, shadow.variant, time.perf_counter() - began,
                                 scored.risk_score, scored.decision, scored.fallback)  # fmt: skip
            agree = int(np.sum(scored.decision == np.asarray(served.decision)))
            log.info("shadow v%s scored %d transactions: %d same decisions as served, "
                     "mean risk %.4f vs %.4f", shadow.version, len(batch), agree,
                     float(scored.risk_score.mean()), float(served.risk_score.mean()))  # fmt: skip
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
