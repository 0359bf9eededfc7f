"""The lean V2 route answers exactly what KServe's own endpoint answers, errors included.

Each request goes once through :class:`ScorerApp` and once through KServe's FastAPI app alone
(its routes, middleware and exception handlers on a fresh app around the same data plane);
status and JSON document must be the same. Requests the lean route does not take (binary
tensors, parameters, a model not ready) reach KServe and get KServe's answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.infer_type import InferRequest
from kserve.protocol.rest.server import RESTServer
from prometheus_client import CollectorRegistry
from tests.unit.scoring.served import Served

from fraudrisk.serving.asgi import OmitNullsMiddleware, ScorerApp, decode_v2
from fraudrisk.serving.kserve_model import FraudRiskModel, ServiceSpec
from fraudrisk.serving.prometheus import scorer_metrics
from fraudrisk.serving.server import build_server

INFER = "/v2/models/fraud-risk/infer"


def apps(model: FraudRiskModel) -> tuple[ScorerApp, Any]:
    """(ours, KServe's alone) around one ModelServer's data plane."""
    server = build_server(model, http_port=0)
    kserve_app = FastAPI(default_response_class=ORJSONResponse)
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, 0
    )
    rest._add_middlewares(kserve_app)
    rest._register_endpoints(kserve_app)
    rest._add_exception_handlers(kserve_app)
    return ScorerApp(server.dataplane, kserve_app), OmitNullsMiddleware(kserve_app)


@pytest.fixture(scope="module")
def loaded(served: Served) -> FraudRiskModel:
    model = FraudRiskModel(
        ServiceSpec("models:/fraud-risk@champion"),
        served.settings,
        states=lambda _s: served.states,
        metrics=scorer_metrics(CollectorRegistry()),
    )
    assert model.load()
    return model


def post(app: Any, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scorer") as client:
            return await client.post(
                INFER, content=body, headers=headers or {"content-type": "application/json"}
            )

    return asyncio.run(go())


def v2_body(served: Served, n: int, **extra: Any) -> bytes:
    rows = served.rows.iloc[:n]
    columns = [
        ("transaction_id", "INT64", rows["transaction_id"].tolist()),
        ("tx_datetime", "BYTES", [t.isoformat() for t in rows["tx_datetime"]]),
        ("customer_id", "INT64", rows["customer_id"].tolist()),
        ("terminal_id", "INT64", rows["terminal_id"].tolist()),
        ("tx_amount", "FP64", rows["tx_amount"].tolist()),
    ]
    inputs = [{"name": k, "datatype": t, "shape": [n], "data": d} for k, t, d in columns]
    return orjson.dumps({"inputs": inputs, **extra})


@pytest.mark.parametrize(("n", "extra"), [(1, {}), (1, {"id": "req-9"}), (30, {})])
def test_scores_are_answered_as_kserve_answers_them(
    served: Served, loaded: FraudRiskModel, n: int, extra: dict[str, Any]
) -> None:
    ours, theirs = apps(loaded)
    body = v2_body(served, n, **extra)
    reference = post(theirs, body)

    async def kserve_must_not_be_called(*_args: Any) -> None:
        raise AssertionError("the lean route handed a plain V2 request to KServe")

    ours.app = kserve_must_not_be_called
    mine = post(ours, body)
    assert mine.status_code == reference.status_code == 200
    assert mine.json() == reference.json()
    assert len(mine.json()["outputs"][0]["data"]) == n
    assert mine.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"inputs": []}',
        b'{"inputs": [{"name": "tx_amount", "datatype": "FP64", "shape": [1], "data": [1.0]}]}',
        b'{"inputs": [{"name": "nope", "datatype": "FP64", "shape": [1], "data": [1.0]}]}',
        b'{"inputs": [{"name": "tx_amount", "datatype": "FP64", "shape": ["x"], "data": [1]}]}',
        b'{"id": 7, "inputs": [{"name": "a", "datatype": "FP64", "shape": [1], "data": [1]}]}',
    ],
)
def test_bad_requests_get_kserve_s_status_and_message(
    served: Served, loaded: FraudRiskModel, body: bytes
) -> None:
    ours, theirs = apps(loaded)
    mine, reference = post(ours, body), post(theirs, body)
    assert 400 <= mine.status_code < 500
    assert (mine.status_code, mine.json()) == (reference.status_code, reference.json())


def test_requests_it_does_not_take_reach_kserve(served: Served, loaded: FraudRiskModel) -> None:
    ours, theirs = apps(loaded)
    for body in (
        v2_body(served, 1, parameters={"binary_data_output": True}),
        v2_body(served, 1, outputs=[{"name": "risk_score"}]),
    ):
        mine, reference = post(ours, body), post(theirs, body)
        assert (mine.status_code, mine.content) == (reference.status_code, reference.content)
    binary = {"content-type": "application/json", "inference-header-content-length": "3"}
    assert post(ours, b"{}x", binary).status_code == post(theirs, b"{}x", binary).status_code


def test_a_model_not_ready_answers_503(served: Served) -> None:
    unready = FraudRiskModel(
        ServiceSpec("models:/fraud-risk@nobody"),
        served.settings,
        states=lambda _s: served.states,
        metrics=scorer_metrics(CollectorRegistry()),
    )
    assert not unready.load()
    ours, _ = apps(unready)
    assert post(ours, v2_body(served, 1)).status_code == 503


def test_decode_takes_only_plain_requests() -> None:
    tensor = {"name": "a", "datatype": "INT64", "shape": [1], "data": [1]}
    request = decode_v2(orjson.dumps({"id": "x", "inputs": [tensor]}), "m")
    assert isinstance(request, InferRequest) and request.id == "x"
    assert request.inputs[0].name == "a" and request.inputs[0].data == [1]
    refused = [
        {"inputs": [tensor], "outputs": []},
        {"inputs": [tensor], "parameters": {"a": 1}},
        {"inputs": [{**tensor, "datatype": "FP16"}]},
        {"inputs": [{**tensor, "shape": [True]}]},
        {"inputs": "a"},
        [tensor],
    ]
    for document in refused:
        assert decode_v2(orjson.dumps(document), "m") is None
