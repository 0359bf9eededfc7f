"""The HTTP routes: transactions (single and batch), health, readiness and metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from fraudrisk.api.auth import API_KEY_HEADER, SCOPE_WRITE, Principal
from fraudrisk.api.errors import ERROR_RESPONSES
from fraudrisk.api.models import (
    Accepted,
    BatchAccepted,
    BatchScoreResult,
    Health,
    Mode,
    Readiness,
    ScoreResult,
    TransactionBatchIn,
    TransactionIn,
)
from fraudrisk.api.services import ApiServices

router = APIRouter()
_api_key = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `fraudrisk api keys create` (its hash is in the settings).",
)
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    bearerFormat="JWT",
    description="A JWT from the configured issuer: aud, iss, exp and sub required; the scope "
    "claim must hold transactions:write (or scores:read for the stream).",
)
_MODE_HELP = "sync = score now (200 with the decision); async = produce to Kafka (202). "
_MODE_HELP += "Default: FRAUDRISK_API__DEFAULT_MODE."


def services_of(request: Request) -> ApiServices:
    """The API's parts (built by ``create_app``)."""
    services: ApiServices = request.app.state.services
    return services


async def writer(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """A caller allowed to submit transactions, within its rate limit (else 401/403/429)."""
    token = bearer.credentials if bearer is not None else None
    return services_of(request).admit(request, api_key, token, SCOPE_WRITE)


ModeQuery = Annotated[Mode | None, Query(description=_MODE_HELP)]
Writer = Annotated[Principal, Depends(writer)]


def _responses(sync: type, accepted: type) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"model": sync, "description": "Sync mode: scored (decision, risk, reasons)."},
        202: {"model": accepted, "description": "Async mode: acknowledged by Kafka."},
        **ERROR_RESPONSES,
    }


@router.post(
    "/v1/transactions",
    tags=["transactions"],
    response_model=None,
    responses=_responses(ScoreResult, Accepted),
    summary="Submit one transaction",
)
async def submit(
    body: TransactionIn, request: Request, principal: Writer, mode: ModeQuery = None
) -> JSONResponse:
    """Validate one transaction, tokenise its card number, then score it or queue it."""
    services = services_of(request)
    chosen = services.mode(mode)
    transactions = services.prepare([body])
    if chosen == "sync":
        return JSONResponse((await services.score(transactions))[0])
    ids = await services.enqueue(transactions)
    return JSONResponse(Accepted(transaction_id=ids[0]).model_dump(), status_code=202)


@router.post(
    "/v1/transactions:batch",
    tags=["transactions"],
    response_model=None,
    responses=_responses(BatchScoreResult, BatchAccepted),
    summary="Submit a batch of transactions",
)
async def submit_batch(
    body: TransactionBatchIn, request: Request, principal: Writer, mode: ModeQuery = None
) -> JSONResponse:
    """Validate a batch (all or nothing), then score it or queue it; results keep its order."""
    services = services_of(request)
    chosen = services.mode(mode)
    transactions = services.prepare(body.transactions, "transactions")
    if chosen == "sync":
        return JSONResponse({"results": await services.score(transactions)})
    ids = await services.enqueue(transactions)
    return JSONResponse(BatchAccepted(transaction_ids=ids).model_dump(), status_code=202)


@router.get("/healthz", tags=["operations"], summary="Liveness")
async def healthz() -> Health:
    """The process answers."""
    return Health()


@router.get(
    "/readyz",
    tags=["operations"],
    summary="Readiness",
    response_model=None,
    responses={
        200: {"model": Readiness, "description": "Ready."},
        503: {"model": Readiness, "description": "Not ready."},
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Ready when a model or the flagged fallback rules score (and Kafka answers, if async)."""
    state = await run_in_threadpool(services_of(request).readiness)  # Kafka check may block
    return JSONResponse(state.model_dump(), status_code=200 if state.ready else 503)


@router.get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text format.",
        }
    },
)
async def metrics(request: Request) -> Response:
    """Requests, latency, rejections, WebSocket subscribers and the scorer's metrics."""
    registry = services_of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
