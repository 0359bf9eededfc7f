"""Run :class:`~fraudrisk.inference.service.FraudRiskModel` in KServe's ``ModelServer``.

The server starts even when the model cannot be loaded yet: it then answers 503 on
``/v2/health/ready`` and ``/v2/models/<name>/ready`` (and refuses inference) until a
background retry loads it, so Kubernetes sends it no traffic meanwhile.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from kserve import ModelServer
from kserve.model_server import app as model_server_app
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

    async def model_metadata(self, model_name: str) -> dict[str, Any]:
        """KServe's metadata plus the served versions (the V2 schema wants a list, not null)."""
        metadata: dict[str, Any] = await super().model_metadata(model_name)
        model = self.model_registry.get_model(model_name)
        metadata["versions"] = model.versions() if hasattr(model, "versions") else []
        return metadata


class OmitNullsMiddleware:
    """Leave out the ``null`` optional fields KServe writes into V2 JSON answers.

    KServe serialises absent optional fields (``parameters``, ``model_version``, ``versions``)
    as ``null``, which the V2 REST schema does not allow (e.g. ``parameters`` must be an
    object); the spec's answer is to omit them. Only ``/v2/`` JSON bodies are rewritten.
    """

    def __init__(self, app: Any) -> None:
        """Wrap an ASGI app."""
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Buffer a /v2/ JSON answer, drop its null fields, send it with a fixed length."""
        if scope["type"] != "http" or not scope["path"].startswith("/v2/"):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def rewrite(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = _without_nulls(b"".join(chunks), start.get("headers", []))
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)


def _without_nulls(body: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    if (b"content-type", b"application/json") not in headers or b"null" not in body:
        return body
    document = orjson.loads(body)
    return orjson.dumps(_drop_nulls(document))


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


class BoundModelServer(ModelServer):  # type: ignore[misc]  # kserve is untyped
    """KServe's ModelServer listening on a chosen address (KServe's is always 0.0.0.0)."""

    def __init__(self, host: str, **options: Any) -> None:
        """Bind the REST server to ``host`` (``127.0.0.1`` locally, ``0.0.0.0`` in a pod)."""
        super().__init__(**options)
        self.host = host

    def setup_event_loop(self) -> None:
        """Called by ``start`` once its REST server exists and before it listens."""
        if self._rest_server is not None:
            self._rest_server.config.host = self.host
            self._rest_server.config.app = OmitNullsMiddleware(model_server_app)
        super().setup_event_loop()


def build_server(
    model: FraudRiskModel, http_port: int, host: str = "0.0.0.0", **options: Any
) -> ModelServer:
    """A ModelServer on ``host:http_port`` (REST only) with ``model`` registered, ready or not."""
    server = BoundModelServer(host, http_port=http_port, enable_grpc=False, workers=1, **options)
    server.dataplane = ModelsReadyDataPlane(model_registry=server.registered_models)
    server.register_model(model)
    quiet_request_logs()
    return server


#: Loggers that write a line per request (KServe's timing middleware, uvicorn's access log):
#: at 300 requests/s they cost more than the scoring; per-variant metrics say the same.
PER_REQUEST_LOGGERS = ("kserve.trace", "uvicorn.access")


def quiet_request_logs(level: int = logging.WARNING) -> None:
    """Silence the per-request log lines (set ``FRAUDRISK_SERVING__REQUEST_LOGS`` to keep)."""
    import os

    if os.environ.get("FRAUDRISK_SERVING__REQUEST_LOGS", "").lower() in ("1", "true", "yes"):
        return
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(level)


def serve(
    spec: ServiceSpec, settings: Settings, http_port: int, retry_seconds: float = 30.0
) -> None:
    """Load the model (retrying in the background on failure) and serve until stopped."""
    model = FraudRiskModel(spec, settings)
    if not model.load():
        model.keep_loading(retry_seconds)
    build_server(model, http_port).start([])
