"""The OpenAPI document is complete, and schemathesis finds no server error (in process)."""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.unit.api.helpers import WRITER_KEY, FakeProducer, api_settings, rules_only, settings_with

from fraudrisk.api.app import create_app

ERRORS = {"400", "401", "403", "413", "422", "429", "503"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def incomplete(spec: dict[str, Any]) -> list[str]:
    """What the document lacks: per operation a summary, a schema per JSON response, security
    and every error response on the transaction routes; security schemes and examples."""
    missing = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            if not operation.get("summary"):
                missing.append(f"{where}: summary")
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if not any(media.get("schema") for media in content.values()):
                    missing.append(f"{where} {status}: schema")
            if path.startswith("/v1/"):
                missing += [f"{where}: {s}" for s in sorted(ERRORS - set(operation["responses"]))]
                if not operation.get("security"):
                    missing.append(f"{where}: security")
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                name = body.get("$ref", "/inline").rsplit("/", 1)[1]
                if not spec["components"].get("schemas", {}).get(name, {}).get("examples"):
                    missing.append(f"{where}: body examples")
    schemes = set(spec.get("components", {}).get("securitySchemes", {}))
    missing += [f"security scheme {s}" for s in sorted({"ApiKey", "Bearer"} - schemes)]
    return missing


def test_the_document_is_complete() -> None:
    spec = create_app(settings_with(api_settings())).openapi()
    assert set(spec["paths"]) == {
        "/v1/transactions",
        "/v1/transactions:batch",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    assert set(spec["paths"]["/v1/transactions"]["post"]["responses"]) >= {"200", "202"} | ERRORS
    assert incomplete(spec) == []
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # one error model
    problem = spec["components"]["schemas"]["Problem"]["properties"]
    assert set(problem) == {"status", "title", "detail", "errors"}


def test_negative_control_a_bare_app_is_incomplete() -> None:
    bare = FastAPI()

    @bare.post("/v1/things")
    async def things(body: dict[str, int]) -> dict[str, int]:
        return body

    found = incomplete(bare.openapi() | {"components": {}})
    assert any("security" in m for m in found) and any("413" in m for m in found)


def _app(scorer_fails: bool = False) -> FastAPI:
    settings = settings_with(api_settings(kafka_enabled=True))
    scorer = rules_only(settings)
    if scorer_fails:
        scorer.score = _broken  # type: ignore[method-assign]
    return create_app(settings, scorer=scorer, producer=FakeProducer(), relay=False)


def _broken(batch: object, fields: object = None) -> object:
    raise ValueError("scorer bug")


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())
schema.config.generation.update(max_examples=50)


@schema.parametrize()
@hypothesis.settings(
    deadline=None, derandomize=True, suppress_health_check=list(hypothesis.HealthCheck)
)
@pytest.mark.timeout(120)
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"X-API-Key": WRITER_KEY}, checks=CHECKS)


def test_negative_control_schemathesis_reports_a_server_error() -> None:
    broken = schemathesis.openapi.from_asgi("/openapi.json", _app(scorer_fails=True))
    operation = broken["/v1/transactions"]["POST"]
    case = operation.Case(
        body={
            "transaction_id": 1,
            "tx_datetime": "2024-05-01T00:00:00",
            "customer_id": 1,
            "terminal_id": 2,
            "tx_amount": 3.0,
        },
        query={"mode": "sync"},
    )
    with pytest.raises(Exception, match=r"Server error|scorer bug"):  # a check or the app's own
        case.call_and_validate(headers={"X-API-Key": WRITER_KEY}, checks=[not_a_server_error])
