"""The KServe model: V1/V2 predict, canary/A-B/shadow routing, readiness and metrics."""

from __future__ import annotations

import asyncio
import time

import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest
from prometheus_client import CollectorRegistry
from tests.unit.scoring.served import Served

from fraudrisk.registry.mlflow_io import mlflow_client
from fraudrisk.serving.kserve_model import FraudRiskModel, ServiceSpec
from fraudrisk.serving.prometheus import scorer_metrics
from fraudrisk.serving.router import TrafficSplit
from fraudrisk.serving.server import build_server


def model(served: Served, spec: ServiceSpec) -> tuple[FraudRiskModel, CollectorRegistry]:
    registry = CollectorRegistry()
    built = FraudRiskModel(
        spec, served.settings, states=lambda _s: served.states, metrics=scorer_metrics(registry)
    )
    built.load()
    return built, registry


def instances(served: Served, n: int, start: int = 0) -> dict[str, list[dict[str, object]]]:
    rows = served.rows.iloc[start : start + n]
    return {
        "instances": [
            {
                "transaction_id": int(r.transaction_id),
                "tx_datetime": r.tx_datetime.isoformat(),
                "customer_id": int(r.customer_id),
                "terminal_id": int(r.terminal_id),
                "tx_amount": float(r.tx_amount),
            }
            for r in rows.itertuples()
        ]
    }


def v2_request(served: Served, n: int) -> InferRequest:
    rows = served.rows.iloc[:n]

    def tensor(name: str, datatype: str, data: list[object]) -> InferInput:
        return InferInput(name=name, shape=[n], datatype=datatype, data=data)

    return InferRequest(
        model_name="fraud-risk",
        request_id="r-1",
        infer_inputs=[
            tensor("transaction_id", "INT64", rows["transaction_id"].tolist()),
            tensor("tx_datetime", "BYTES", [t.isoformat() for t in rows["tx_datetime"]]),
            tensor("customer_id", "INT64", rows["customer_id"].tolist()),
            tensor("terminal_id", "INT64", rows["terminal_id"].tolist()),
            tensor("tx_amount", "FP64", rows["tx_amount"].tolist()),
        ],
    )


def test_v1_and_v2_answer_the_same_scores(served: Served) -> None:
    scorer, _ = model(served, ServiceSpec("models:/fraud-risk@champion"))
    assert scorer.ready
    v1 = scorer.predict(instances(served, 5))["predictions"]
    v2 = scorer.predict(v2_request(served, 5))
    outputs = {o.name: o for o in v2.outputs}
    assert set(outputs) == {
        "risk_score",
        "decision",
        "reason_codes",
        "model_version",
        "variant",
        "policy_version",
    }
    assert all(o.shape == [5] for o in outputs.values())
    assert [p["risk_score"] for p in v1] == outputs["risk_score"].data
    assert [p["decision"] for p in v1] == outputs["decision"].data
    assert v2.id == "r-1" and v2.model_version == "1"
    assert {p["variant"] for p in v1} == {"champion"} and not any(p["fallback"] for p in v1)


def test_a_bad_request_is_invalid_input_and_counted(served: Served) -> None:
    scorer, registry = model(served, ServiceSpec("models:/fraud-risk@champion"))
    with pytest.raises(InvalidInput, match="tx_amount"):
        scorer.predict({"instances": [instances(served, 1)["instances"][0] | {"tx_amount": -1}]})
    labels = {"model": "fraud-risk", "variant": "none", "kind": "invalid"}
    assert registry.get_sample_value("fraudrisk_request_errors_total", labels) == 1


def test_the_canary_gets_its_share_and_per_variant_metrics(served: Served) -> None:
    split = TrafficSplit("canary", 25, seed=7)
    scorer, registry = model(
        served, ServiceSpec("models:/fraud-risk/1", "models:/fraud-risk/2", split)
    )
    body = instances(served, 1)
    variants = [scorer.predict(body)["predictions"][0]["variant"] for _ in range(800)]
    canary = variants.count("canary")
    assert abs(canary / 800 - 0.25) <= 4 * (0.25 * 0.75 / 800) ** 0.5
    count = registry.get_sample_value(
        "fraudrisk_requests_total", {"model": "fraud-risk", "variant": "canary"}
    )
    assert count == canary


def test_ab_is_sticky_for_a_customer(served: Served) -> None:
    spec = ServiceSpec("models:/fraud-risk/1", "models:/fraud-risk/2", TrafficSplit("ab", 50))
    scorer, _ = model(served, spec)
    body = instances(served, 60)
    first = scorer.predict(body)["predictions"]
    again = scorer.predict(body)["predictions"]
    by_customer: dict[object, set[str]] = {}
    for tx, p in zip(body["instances"], first + again, strict=False):
        by_customer.setdefault(tx["customer_id"], set()).add(p["variant"])
    assert all(len(v) == 1 for v in by_customer.values())
    assert {p["variant"] for p in first} == {"champion", "challenger"}
    assert [p["variant"] for p in first] == [p["variant"] for p in again]


def test_the_shadow_scores_everything_and_is_never_returned(served: Served) -> None:
    spec = ServiceSpec("models:/fraud-risk/1", "models:/fraud-risk/2", TrafficSplit("shadow"))
    scorer, registry = model(served, spec)
    for start in range(0, 50, 10):
        answer = scorer.predict(instances(served, 10, start))["predictions"]
        assert {(p["variant"], p["model_version"]) for p in answer} == {("champion", "1")}
    assert scorer.drain_shadow()
    labels = {"model": "fraud-risk", "variant": "shadow"}
    assert registry.get_sample_value("fraudrisk_requests_total", labels) == 5
    assert registry.get_sample_value("fraudrisk_risk_score_count", labels) == 50


def test_an_unloadable_model_keeps_the_server_unready(served: Served) -> None:
    scorer, _ = model(served, ServiceSpec("models:/fraud-risk@nobody"))
    assert not scorer.ready and "has no alias @nobody" in scorer.load_error
    server = build_server(scorer, http_port=0)
    assert asyncio.run(server.dataplane.ready()) is False
    assert asyncio.run(server.dataplane.model_ready("fraud-risk")) is False


def test_an_unloadable_candidate_leaves_all_traffic_to_the_stable_model(served: Served) -> None:
    spec = ServiceSpec("models:/fraud-risk/1", "models:/fraud-risk/77", TrafficSplit("canary", 100))
    scorer, _ = model(served, spec)
    assert scorer.ready and list(scorer.scorers) == ["champion"]
    assert scorer.predict(instances(served, 1))["predictions"][0]["variant"] == "champion"


def test_loading_is_retried_until_the_model_exists(served: Served) -> None:
    scorer, _ = model(served, ServiceSpec("models:/fraud-risk@later"))
    assert not scorer.ready
    scorer.keep_loading(retry_seconds=0.05)
    client = mlflow_client(served.settings)
    client.set_registered_model_alias("fraud-risk", "later", "2")
    try:
        deadline = time.monotonic() + 20
        while not scorer.ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scorer.ready and scorer.scorers["champion"].version == "2"
        server = build_server(scorer, http_port=0)
        assert asyncio.run(server.dataplane.ready()) is True
    finally:
        client.delete_registered_model_alias("fraud-risk", "later")


def test_a_failing_store_counts_as_an_error_of_its_variant(served: Served) -> None:
    from tests.unit.scoring.test_scorer import BrokenStore

    registry = CollectorRegistry()
    broken = FraudRiskModel(
        ServiceSpec("models:/fraud-risk@champion"),
        served.settings,
        states=lambda _s: BrokenStore(),
        metrics=scorer_metrics(registry),
    )
    assert broken.load()
    answer = broken.predict(instances(served, 2))["predictions"]
    assert all(p["fallback"] for p in answer)
    labels = {"model": "fraud-risk", "variant": "champion", "kind": "fallback"}
    assert registry.get_sample_value("fraudrisk_request_errors_total", labels) == 1


def test_metrics_of_a_new_registry_are_never_those_of_a_dead_one() -> None:
    import gc

    for _ in range(20):
        registry = CollectorRegistry()
        scorer_metrics(registry).requests.labels("m", "v").inc()
        assert (
            registry.get_sample_value("fraudrisk_requests_total", {"model": "m", "variant": "v"})
            == 1
        )
        del registry
        gc.collect()
