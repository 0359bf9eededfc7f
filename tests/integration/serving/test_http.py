"""The scorer over HTTP in a real ModelServer process, reading a real Feast online store.

V1 and V2 (single and batch) answers, conformance to the V2 REST spec's schemas, bad requests
answered 4xx (never 5xx), an unloadable model keeping the server unready (503), and the
per-variant metrics on /metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from tests.support.serving import (
    ServingHome,
    build_serving_home,
    scorer_process,
    wait_until_ready,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SPEC = (
    Path(__file__).resolve().parents[4] / "shared" / "specs" / "kserve-v2" / "rest_predict_v2.yaml"
)
PREDICT, INFER = "/v1/models/fraud-risk:predict", "/v2/models/fraud-risk/infer"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> ServingHome:
    return build_serving_home(tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="module")
def url(home: ServingHome) -> Iterator[str]:
    with scorer_process(home) as (base, _process):
        wait_until_ready(base)
        yield base


def conforms(document: Any, schema_name: str) -> None:
    spec = yaml.safe_load(SPEC.read_text())
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    jsonschema.validate(document, schema)


def transactions(home: ServingHome, n: int) -> list[dict[str, Any]]:
    """The last n transactions of the lake, moved one week later (new ids): fresh traffic."""
    rows = home.frame.sort_values("tx_datetime").tail(n)
    return [
        {
            "transaction_id": 10**9 + i,
            "tx_datetime": (r.tx_datetime + __import__("datetime").timedelta(days=7)).isoformat(),
            "customer_id": int(r.customer_id),
            "terminal_id": int(r.terminal_id),
            "tx_amount": float(r.tx_amount),
        }
        for i, r in enumerate(rows.itertuples())
    ]


def v2_body(txs: list[dict[str, Any]]) -> dict[str, Any]:
    types = {
        "transaction_id": "INT64",
        "tx_datetime": "BYTES",
        "customer_id": "INT64",
        "terminal_id": "INT64",
        "tx_amount": "FP64",
    }
    return {
        "id": "req-7",
        "inputs": [
            {"name": name, "datatype": kind, "shape": [len(txs)], "data": [t[name] for t in txs]}
            for name, kind in types.items()
        ],
    }


@pytest.mark.parametrize("n", [1, 25])
def test_v1_scores_single_and_batch(url: str, home: ServingHome, n: int) -> None:
    txs = transactions(home, n)
    answer = httpx.post(url + PREDICT, json={"instances": txs}, timeout=10)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["transaction_id"] for p in predictions] == [t["transaction_id"] for t in txs]
    for p in predictions:
        assert 0 <= p["risk_score"] <= 1 and p["decision"] in {"approve", "review", "decline"}
        assert p["model_version"] == "1" and p["variant"] == "champion" and not p["fallback"]
        assert isinstance(p["reason_codes"], list)


@pytest.mark.parametrize("n", [1, 25])
def test_v2_scores_single_and_batch_conforming_to_the_spec(
    url: str, home: ServingHome, n: int
) -> None:
    body = v2_body(transactions(home, n))
    conforms(body, "inference_request")
    answer = httpx.post(url + INFER, json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    response = answer.json()
    conforms(response, "inference_response")
    outputs = {o["name"]: o for o in response["outputs"]}
    expected = {
        "risk_score": "FP64",
        "decision": "BYTES",
        "reason_codes": "BYTES",
        "model_version": "BYTES",
    }
    for name, datatype in expected.items():
        assert outputs[name]["datatype"] == datatype and outputs[name]["shape"] == [n]
        assert len(outputs[name]["data"]) == n
    assert response["id"] == "req-7" and response["model_name"] == "fraud-risk"


def test_v1_and_v2_agree(url: str, home: ServingHome) -> None:
    txs = transactions(home, 10)
    v1 = httpx.post(url + PREDICT, json={"instances": txs}, timeout=10).json()["predictions"]
    v2 = httpx.post(url + INFER, json=v2_body(txs), timeout=10).json()["outputs"]
    scores = next(o["data"] for o in v2 if o["name"] == "risk_score")
    assert [p["risk_score"] for p in v1] == pytest.approx(scores)


def test_metadata_endpoints_conform(url: str) -> None:
    server = httpx.get(url + "/v2", timeout=5)
    assert server.status_code == 200
    conforms(server.json(), "metadata_server_response")
    model = httpx.get(url + "/v2/models/fraud-risk", timeout=5).json()
    conforms(model, "metadata_model_response")
    assert [i["name"] for i in model["inputs"]][:5] == [
        "transaction_id",
        "tx_datetime",
        "customer_id",
        "terminal_id",
        "tx_amount",
    ]
    assert httpx.get(url + "/v2/health/ready", timeout=5).status_code == 200
    assert httpx.get(url + "/v2/health/live", timeout=5).status_code == 200


BAD_BODIES: list[tuple[str, Any]] = [
    (PREDICT, {"instances": [{"transaction_id": 1}]}),
    (
        PREDICT,
        {
            "instances": [
                {
                    "transaction_id": 1,
                    "tx_datetime": "2018-10-01T00:00:00",
                    "customer_id": 1,
                    "terminal_id": 1,
                    "tx_amount": -3,
                }
            ]
        },
    ),
    (PREDICT, {"instances": "x"}),
    (PREDICT, {"rows": []}),
    (PREDICT, [1, 2, 3]),
    (PREDICT, "not json"),
    (INFER, {"inputs": []}),
    (
        INFER,
        {"inputs": [{"name": "transaction_id", "datatype": "FP64", "shape": [1], "data": [1.5]}]},
    ),
    (INFER, {"inputs": [{"name": "tx_amount", "datatype": "FP64", "shape": [2], "data": [1]}]}),
    (INFER, {"inputs": 5}),
    (INFER, {"nothing": True}),
    (INFER, "}{"),
    ("/v2/models/other/infer", {"inputs": []}),
]


@pytest.mark.parametrize(("path", "body"), BAD_BODIES)
def test_bad_requests_get_a_4xx_with_a_message(url: str, path: str, body: Any) -> None:
    content = body if isinstance(body, str) else None
    answer = httpx.post(
        url + path,
        json=None if content else body,
        content=content,
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert answer.text


def test_metrics_count_requests_per_variant(url: str, home: ServingHome) -> None:
    httpx.post(url + PREDICT, json={"instances": transactions(home, 3)}, timeout=10)
    text = httpx.get(url + "/metrics", timeout=5).text
    assert 'fraudrisk_requests_total{model="fraud-risk",variant="champion"}' in text
    assert "fraudrisk_request_latency_seconds_bucket" in text
    assert 'fraudrisk_decisions_total{decision="approve"' in text


def test_an_unloadable_model_keeps_the_server_unready(home: ServingHome) -> None:
    env = {"FRAUDRISK_SERVING__MODEL_URI": "models:/fraud-risk@nobody"}
    with scorer_process(home, "--retry-seconds", "1", env=env) as (base, process):
        for path in ("/v2/health/ready", "/v2/models/fraud-risk/ready"):
            assert httpx.get(base + path, timeout=5).status_code == 503
        body = {"instances": transactions(home, 1)}
        assert httpx.post(base + PREDICT, json=body, timeout=5).status_code == 503
        assert httpx.get(base + "/v2/health/live", timeout=5).status_code == 200
        process.terminate()
        process.wait(timeout=20)
        log = process.log_path.read_text()  # type: ignore[attr-defined]
    assert "NOT READY" in log and "has no alias @nobody" in log


def _requests_by_worker(folder: Path) -> dict[str, float]:
    """Scored requests counted by each worker process (its own multiprocess file)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    counts: dict[str, float] = {}
    for path in folder.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)]):
            counts[path.stem] = counts.get(path.stem, 0.0) + sum(
                s.value for s in metric.samples if s.name == "fraudrisk_requests_total"
            )
    return counts


def test_two_workers_share_the_port_and_add_up_their_metrics(
    home: ServingHome, tmp_path: Path
) -> None:
    """``--workers 2``: two processes answer on one port; /metrics is their sum."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    with scorer_process(home, "--workers", "2", env=env, wait=False) as (base, process):
        wait_until_ready(base, timeout_s=180)
        bodies = [v2_body(transactions(home, 1)) for _ in range(60)]
        for body in bodies:  # a new connection each: the kernel hands them to either worker
            answer = httpx.post(base + INFER, json=body, timeout=10)
            assert answer.status_code == 200, answer.text
        by_worker = _requests_by_worker(tmp_path)
        text = httpx.get(base + "/metrics", timeout=5).text
        assert httpx.post(base + INFER, json={"inputs": []}, timeout=10).status_code == 400
        process.terminate()
        process.wait(timeout=30)
        log = process.log_path.read_text()  # type: ignore[attr-defined]
    assert sum(by_worker.values()) == 60
    assert len([n for n in by_worker.values() if n > 0]) == 2, by_worker
    assert 'fraudrisk_requests_total{model="fraud-risk",variant="champion"} 60.0' in text
    assert log.count("model fraud-risk ready") == 2  # each worker loaded its own copy
