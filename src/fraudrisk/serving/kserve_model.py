"""The KServe model of the scorer, and the ModelServer around it.

:class:`FraudRiskModel` is a ``kserve.Model``: ``load`` fetches the stable model (and the
candidate of a canary, A/B or shadow split) and the online store; ``predict`` answers KServe
V1 bodies (``{"instances": [...]}``) and V2 ``InferRequest`` objects. A model that cannot be
loaded leaves the server unready — its ready endpoints answer 503 and inference is refused —
with one log line saying why; loading is retried in the background until it succeeds. A
candidate that cannot be loaded gets no traffic (as a KServe revision that never became
ready), and the stable model answers everything. The active decision policy version decides
when the server is given a ``policy_factory`` (``fraudrisk serve`` gives
:func:`fraudrisk.policy.live.live_policy`: serving may not import the policy package), opened at
the first load in each worker process and reloaded when another version is activated; every
answer carries its ``policy_version``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from fraudrisk.config import Settings
from fraudrisk.scoring.decisions import PolicyProvider
from fraudrisk.scoring.scorer import RowScores
from fraudrisk.scoring.state_reader import FeastStateReader, StateReader
from fraudrisk.serving.prometheus import ScorerMetrics
from fraudrisk.serving.variants import ServedVariants, ServiceSpec
from fraudrisk.serving.wire_protocol import (
    V2_INPUT_METADATA,
    V2_OUTPUT_METADATA,
    InvalidRequestError,
    parse_v1,
    parse_v2,
    v1_predictions,
    v2_outputs,
)

if TYPE_CHECKING:
    from fraudrisk.serving.workers import WorkerStart

__all__ = ["FraudRiskModel", "PolicyFactory", "ServiceSpec"]
log = logging.getLogger(__name__)
#: Opens the live decision policy of the settings (None: the models' thresholds decide).
PolicyFactory = Callable[[Settings], PolicyProvider | None]


class FraudRiskModel(ServedVariants, Model):  # type: ignore[misc]  # kserve is untyped
    """The scorer as a KServe model (V1 and V2 protocols, canary/A-B/shadow variants)."""

    def __init__(
        self,
        spec: ServiceSpec,
        settings: Settings,
        states: Callable[[Settings], StateReader] = FeastStateReader.from_settings,
        metrics: ScorerMetrics | None = None,
        policy_factory: PolicyFactory | None = None,
    ) -> None:
        """Prepare the model; nothing is loaded before :meth:`load`.

        ``policy_factory`` opens the decision policy at the first load (in the process that
        serves: each worker opens its own).
        """
        Model.__init__(self, spec.name)
        ServedVariants.__init__(self, spec, settings, states, metrics)
        self.worker_start: WorkerStart | None = None
        self.policy_factory = policy_factory
        self._policy_opened = policy_factory is None

    def load(self) -> bool:
        """Open the live policy (once, in this process), then load the models."""
        if not self._policy_opened:
            self._policy_opened = True
            try:
                assert self.policy_factory is not None
                self.policy = self.policy_factory(self.settings)
            except Exception as error:  # the policy database is down: the model's thresholds
                log.error("live policy unavailable (%s): the model's thresholds decide", error)
        return ServedVariants.load(self)

    def wait_until_serving(self, timeout_s: float) -> bool:
        """Wait for the first load and, in a worker, for the other workers; False on timeout."""
        if not self.wait_first_load(timeout_s):
            return False
        barrier = self.worker_start.barrier if self.worker_start else None
        return barrier is None or barrier.wait(timeout_s)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Sent to a KServe worker process as its start recipe; the worker loads its own copy.

        Raises:
            TypeError: If no :class:`~fraudrisk.serving.workers.WorkerStart` was set.
        """
        start = self.worker_start
        if start is None:
            raise TypeError(f"model {self.name} has no WorkerStart: serve it with one worker")
        # The recipe's own method builds the worker's model: this module never imports the
        # worker machinery (which builds this class), so the two stay free of a cycle.
        return type(start).start_model, (start,)

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
        try:
            batch = (
                parse_v2(payload.inputs) if isinstance(payload, InferRequest) else parse_v1(payload)
            )
        except InvalidRequestError as error:
            self.metrics.error(self.name, "none", "invalid")
            raise InvalidInput(str(error)) from None
        scores = self.score(batch)
        if isinstance(payload, InferRequest):
            return self._v2_response(payload, scores)
        return v1_predictions(batch, scores)

    def _v2_response(self, request: InferRequest, scores: RowScores) -> InferResponse:
        outputs = [
            InferOutput(
                name=o["name"],
                shape=o["shape"],
                datatype=o["datatype"],
                data=o["data"],
                parameters={},  # {} = left out, as the V2 schema wants
            )
            for o in v2_outputs(scores)
        ]
        versions = sorted(set(scores.model_version))
        return InferResponse(
            response_id=request.id or "",
            model_name=self.name,
            model_version=versions[0] if len(versions) == 1 else ",".join(versions),
            infer_outputs=outputs,
            parameters={},
        )
