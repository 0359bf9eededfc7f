"""The ``WS /v1/stream`` endpoint (protocol in :mod:`fraudrisk.api.subscriptions`)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from fraudrisk.api.auth import SCOPE_STREAM, AuthError, Principal, ScopeError
from fraudrisk.api.errors import ApiError
from fraudrisk.api.services import ApiServices
from fraudrisk.api.subscriptions import (
    CLOSE_BAD_REQUEST,
    CLOSE_FORBIDDEN,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_SLOW,
    CLOSE_UNAUTHENTICATED,
    EVENT_TYPES,
    Subscriber,
)


async def stream_endpoint(websocket: WebSocket, events: str = ",".join(EVENT_TYPES)) -> None:
    """Authenticate a subscriber, then push its events until it leaves or is dropped."""
    services: ApiServices = websocket.app.state.services
    await websocket.accept()
    kinds = frozenset(e.strip() for e in events.split(",") if e.strip())
    if not kinds or not kinds <= set(EVENT_TYPES):
        await websocket.close(CLOSE_BAD_REQUEST, f"events must be among {list(EVENT_TYPES)}")
        return
    principal = await _admit(websocket, services)
    if principal is None:
        return
    subscriber = services.hub.subscribe(principal.client, kinds)
    try:
        await websocket.send_json(
            {"type": "subscribed", "client": principal.client, "events": sorted(kinds)}
        )
        await _pump(websocket, subscriber)
    finally:
        services.hub.unsubscribe(subscriber)


async def _admit(websocket: WebSocket, services: ApiServices) -> Principal | None:
    """The subscriber's identity (headers or first message); closes the socket on failure."""
    try:
        api_key, bearer = _header_credentials(websocket)
        if not api_key and not bearer:
            api_key, bearer = await _message_credentials(websocket, services)
        principal = services.auth.authenticate(api_key, bearer)
        services.auth.authorize(principal, SCOPE_STREAM)
        services.throttle(principal.client)
        return principal
    except AuthError as error:
        await websocket.close(CLOSE_UNAUTHENTICATED, error.reason[:120])
    except ScopeError as error:
        await websocket.close(CLOSE_FORBIDDEN, str(error)[:120])
    except ApiError as error:
        await websocket.close(CLOSE_RATE_LIMITED, error.detail[:120])
    except WebSocketDisconnect:
        pass
    services.metrics.ws_dropped.labels("refused").inc()
    return None


def _header_credentials(websocket: WebSocket) -> tuple[str | None, str | None]:
    api_key = websocket.headers.get("x-api-key")
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    return api_key, token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _message_credentials(
    websocket: WebSocket, services: ApiServices
) -> tuple[str | None, str | None]:
    try:
        first: Any = await asyncio.wait_for(
            websocket.receive_json(), services.settings.api.ws_auth_timeout_s
        )
    except (TimeoutError, ValueError, KeyError):
        raise AuthError(
            'no credentials: send {"type": "auth", "api_key"|"token": ...} '
            "first, or X-API-Key / Authorization headers"
        ) from None
    if not isinstance(first, dict) or first.get("type") != "auth":
        raise AuthError('the first message must be {"type": "auth", ...}')
    api_key, token = first.get("api_key"), first.get("token")
    return (
        api_key if isinstance(api_key, str) else None,
        token if isinstance(token, str) else None,
    )


async def _pump(websocket: WebSocket, subscriber: Subscriber) -> None:
    """Send queued events; stop when the client leaves or the hub dropped it."""
    sender = asyncio.create_task(_send_events(websocket, subscriber))
    listener = asyncio.create_task(_until_disconnect(websocket))
    done, pending = await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in done | pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):  # the client is gone
            await task


async def _send_events(websocket: WebSocket, subscriber: Subscriber) -> None:
    while True:
        event = await subscriber.queue.get()
        if event is None:
            await websocket.close(CLOSE_TOO_SLOW, "too slow: events dropped")
            return
        await websocket.send_json(event)


async def _until_disconnect(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
