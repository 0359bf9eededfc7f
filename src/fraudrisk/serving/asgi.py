"""The ASGI app the ModelServer runs: KServe's FastAPI app behind a lean V2 inference route.

KServe's V2 ``/infer`` endpoint spends ~0.5 ms per request around the model: FastAPI routing
over ~40 routes, a pydantic ``InferenceRequest``, its timing middleware, the response model and
``jsonable_encoder``. For the scorer's hot path — a JSON V2 request to a registered model — the
:class:`ScorerApp` decodes the body the way KServe's own binary-extension decoder does
(``orjson`` into ``InferInput`` objects), calls the same ``kserve.Model.__call__``
(preprocess → predict → postprocess, KServe's latency histograms), and writes the V2 answer with
``orjson``. Every other request, and any request this route is not sure about (binary tensors,
requested outputs, parameters, a model not ready, a body it cannot decode), goes to KServe's app
unchanged, so errors keep KServe's status codes and messages.

It also: answers ``/metrics`` from every worker process (``prometheus_client`` multiprocess
mode) when ``PROMETHEUS_MULTIPROC_DIR`` is set; holds a worker's ASGI startup until its model's
first load attempt ended (a worker takes no connection before it can answer); and leaves out
the ``null`` optional fields KServe writes into other V2 answers (:class:`OmitNullsMiddleware`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from kserve.model_server import app as kserve_app
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse
from prometheus_client import CollectorRegistry, exposition, multiprocess

log = logging.getLogger(__name__)
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_INFER_PATH = re.compile(r"^/v2/models/([^/]+)/infer$")
_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
_JSON = (b"content-type", b"application/json")
#: Longest a worker waits for its model's first load before it serves (unready) anyway.
FIRST_LOAD_WAIT_S = 600.0


#: Loggers that write a line per request (KServe's timing middleware, uvicorn's access log):
#: at 300 requests/s they cost more than the scoring; per-variant metrics say the same.
PER_REQUEST_LOGGERS = ("kserve.trace", "uvicorn.access")


def quiet_request_logs(level: int = logging.WARNING) -> None:
    """Silence the per-request log lines (set ``FRAUDRISK_SERVING__REQUEST_LOGS`` to keep)."""
    if os.environ.get("FRAUDRISK_SERVING__REQUEST_LOGS", "").lower() in ("1", "true", "yes"):
        return
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(level)


class OmitNullsMiddleware:
    """Leave out the ``null`` optional fields KServe writes into V2 JSON answers.

    KServe serialises absent optional fields (``parameters``, ``model_version``, ``versions``)
    as ``null``, which the V2 REST schema does not allow (e.g. ``parameters`` must be an
    object); the spec's answer is to omit them. Only ``/v2/`` JSON bodies are rewritten.
    """

    def __init__(self, app: Any) -> None:
        """Wrap an ASGI app."""
        self.app = app

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        """Buffer a /v2/ JSON answer, drop its null fields, send it with a fixed length."""
        if scope["type"] != "http" or not scope["path"].startswith("/v2/"):
            await self.app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
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
    if _JSON not in headers or b"null" not in body:
        return body
    return orjson.dumps(drop_nulls(orjson.loads(body)))


def drop_nulls(value: Any) -> Any:
    """``value`` without the ``None`` entries of its dictionaries, at any depth."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


class ScorerApp:
    """KServe's app with the lean V2 route, multi-process metrics and start-up gating.

    Built around a ModelServer's data plane; sent to worker processes by pickling, where it
    wraps that process's own KServe app again (see :meth:`__reduce__`).
    """

    def __init__(self, dataplane: Any, app: Any = None) -> None:
        """Serve the models of ``dataplane`` in front of ``app`` (KServe's app by default)."""
        if app is None:
            app = kserve_app
        self.dataplane = dataplane
        self.kserve_app = app
        self.app = OmitNullsMiddleware(app)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its data plane: a worker wraps its own KServe app (FastAPI is not sent)."""
        return ScorerApp, (self.dataplane,)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        """Route one ASGI connection."""
        if scope["type"] == "lifespan":
            await self.app(scope, self._after_first_load(receive), send)
            return
        if scope["type"] == "http":
            if scope["path"] == "/metrics" and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                await _all_workers_metrics(scope, send)
                return
            match = _INFER_PATH.match(scope["path"]) if scope["method"] == "POST" else None
            if match and _plain_json(scope):
                await self._infer(match[1], scope, receive, send)
                return
        await self.app(scope, receive, send)

    # ---------------------------------------------------------------------- start-up
    def _after_first_load(self, receive: Receive) -> Receive:
        """``receive`` that holds back ``lifespan.startup`` until every model tried to load."""

        async def gated() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._wait_first_load()
            return message

        return gated

    async def _wait_first_load(self) -> None:
        quiet_request_logs()  # a worker's KServe logging config turned them on again
        for model in self.dataplane.model_registry.get_models().values():
            wait = getattr(model, "wait_until_serving", None)
            if wait is not None and not await asyncio.to_thread(wait, FIRST_LOAD_WAIT_S):
                log.error(
                    "model %s: not loaded after %.0f s (or other workers are not), serving anyway",
                    model.name,
                    FIRST_LOAD_WAIT_S,
                )

    # ---------------------------------------------------------------------- inference
    async def _infer(self, name: str, scope: Message, receive: Receive, send: Send) -> None:
        body, replay = await _read_body(receive)
        models = self.dataplane.model_registry.get_models()
        model = models.get(name)
        request = decode_v2(body, name) if model is not None and model.ready else None
        if request is None:  # KServe answers (errors included) exactly as it would
            await self.app(scope, replay, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            response, response_headers = await model(request, headers=headers)
        except Exception as error:  # KServe's own handler and status for this error
            await self._error(error, scope, receive, send)
            return
        extra = [
            (k.lower().encode(), str(v).encode())
            for k, v in response_headers.items()
            if k.lower() not in ("content-length", "content-type")
        ]
        await _send_json(send, 200, encode_v2(response), extra)

    async def _error(self, error: Exception, scope: Message, receive: Receive, send: Send) -> None:
        handlers = getattr(self.kserve_app, "exception_handlers", {})
        for kind in type(error).__mro__:
            if kind in handlers:
                response = await handlers[kind](None, error)
                await response(scope, receive, send)
                return
        raise error


def _plain_json(scope: Message) -> bool:
    """A JSON body without the binary tensor extension (which KServe's decoder handles)."""
    content_type = b"application/json"
    for key, value in scope["headers"]:
        if key == b"inference-header-content-length":
            return False
        if key == b"content-type":
            content_type = value.split(b";")[0].strip().lower()
    return content_type == b"application/json"


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it over again."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # disconnected: let the app see it
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body, replayed = b"".join(chunks), False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


def decode_v2(body: bytes, model_name: str) -> InferRequest | None:
    """A plain V2 JSON request as KServe's ``InferRequest``; None when KServe should decide.

    None for anything but ``{"id"?, "inputs": [{"name", "shape", "datatype", "data"}]}``
    with well-typed fields and no parameters or requested outputs: KServe's full decoder then
    accepts it or answers the error it always answers.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or not set(document) <= {"id", "inputs", "parameters"}:
        return None
    request_id, inputs = document.get("id"), document.get("inputs")
    if document.get("parameters") or not isinstance(inputs, list) or not inputs:
        return None
    if request_id is not None and not isinstance(request_id, str):
        return None
    tensors = [_tensor(item) for item in inputs]
    if any(tensor is None for tensor in tensors):
        return None
    return InferRequest(model_name=model_name, infer_inputs=tensors, request_id=request_id)


def _tensor(item: Any) -> InferInput | None:
    if not isinstance(item, dict) or not set(item) <= _TENSOR_KEYS or item.get("parameters"):
        return None
    name, shape, datatype, data = (item.get(k) for k in ("name", "shape", "datatype", "data"))
    if not (isinstance(name, str) and isinstance(datatype, str) and isinstance(data, list)):
        return None
    if not isinstance(shape, list) or not all(type(n) is int for n in shape):
        return None
    if datatype.upper() == "FP16":
        return None
    return InferInput(name=name, shape=shape, datatype=datatype, data=data, parameters={})


def encode_v2(response: InferResponse) -> bytes:
    """The V2 JSON answer of an ``InferResponse``, null fields left out (as the spec wants)."""
    outputs = response.outputs
    if not all(isinstance(output.data, list) for output in outputs) or response.parameters:
        document, _ = response.to_rest()  # numpy or binary outputs: KServe's serialisation
        return orjson.dumps(drop_nulls(document))
    head = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "id": response.id,
    }
    document = {k: v for k, v in head.items() if v is not None}
    document["outputs"] = [_output(output) for output in outputs]
    return orjson.dumps(document)


def _output(output: Any) -> dict[str, Any]:
    tensor = {"name": output.name, "shape": output.shape, "datatype": output.datatype}
    if output.parameters:
        tensor["parameters"] = drop_nulls(output.parameters)
    tensor["data"] = output.data  # plain values: nothing inside is null
    return tensor


async def _send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    head = [_JSON, (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _all_workers_metrics(scope: Message, send: Send) -> None:
    """``/metrics`` summed over every worker process (prometheus_client multiprocess mode)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    accept = next((v.decode() for k, v in scope["headers"] if k == b"accept"), "")
    encoder, content_type = exposition.choose_encoder(accept)
    body = encoder(registry)
    head = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": body})
