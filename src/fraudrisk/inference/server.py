"""Run :class:`~fraudrisk.inference.service.FraudRiskModel` in KServe's ``ModelServer``.

The server starts even when the model cannot be loaded yet: it then answers 503 on
``/v2/health/ready`` and ``/v2/models/<name>/ready`` (and refuses inference) until a
background retry loads it, so Kubernetes sends it no traffic meanwhile.
"""

from __future__ import annotations

import logging
from typing import Any

from kserve import ModelServer
from kserve.protocol.dataplane import DataPlane

from fraudrisk.config import Settings
from fraudrisk.inference.service import FraudRiskModel, ServiceSpec

log = logging.getLogger(__name__)


class ModelsReadyDataPlane(DataPlane):  # type: ignore[misc]  # kserve is untyped
    """A data plane whose server readiness is the readiness of every registered model."""

    async def ready(self) -> bool:
        """True when every registered model is ready (KServe's own answer is always True)."""
        models = self.model_registry.get_models()
        return bool(models) and all(model.ready for model in models.values())


def build_server(model: FraudRiskModel, http_port: int, **options: Any) -> ModelServer:
    """A ModelServer on ``http_port`` (REST only) with ``model`` registered, ready or not."""
    server = ModelServer(http_port=http_port, enable_grpc=False, workers=1, **options)
    server.dataplane = ModelsReadyDataPlane(model_registry=server.registered_models)
    server.register_model(model)
    return server


def serve(
    spec: ServiceSpec, settings: Settings, http_port: int, retry_seconds: float = 30.0
) -> None:
    """Load the model (retrying in the background on failure) and serve until stopped."""
    model = FraudRiskModel(spec, settings)
    if not model.load():
        model.keep_loading(retry_seconds)
    build_server(model, http_port).start([])
