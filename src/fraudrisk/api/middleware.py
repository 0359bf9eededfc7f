"""The edge of every HTTP request: body size limit, metrics and the access log.

The access log has the method, the route *template* (never the raw path or query string, which
a client could fill with a card number), the status, the client id and the latency; bodies are
never logged. Run uvicorn with its own access log off (``fraudrisk api serve`` does).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudrisk.api.models import Problem
from fraudrisk.api.prometheus import UNMATCHED, ApiMetrics

access_log = logging.getLogger("fraudrisk.api.access")
ANONYMOUS = "anonymous"


class EdgeMiddleware:
    """Pure ASGI middleware (no per-request task or body copy)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, max_body_bytes: int) -> None:
        """Wrap ``app``; bodies over ``max_body_bytes`` are answered 413."""
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one connection scope (WebSocket and lifespan pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            if self._declared_too_large(scope):
                state["reject_reason"] = "too_large"
                await self._answer_too_large(scope, receive, send_status)
            else:
                await self.app(scope, self._limited(receive), send_status)
        finally:
            self._record(scope, state, status, time.perf_counter() - began)

    def _declared_too_large(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit():
                return int(value) > self.max_body_bytes
        return False

    async def _answer_too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = Problem(status=413, title="Content Too Large", detail=self._too_large())
        await JSONResponse(body.model_dump(), status_code=413)(scope, receive, send)

    def _limited(self, receive: Receive) -> Receive:
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, self._too_large())
            return message

        return limited

    def _too_large(self) -> str:
        return f"the body is larger than {self.max_body_bytes} bytes"

    def _record(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", UNMATCHED)
        method = str(scope.get("method", ""))
        client = str(state.get("client", ANONYMOUS))
        self.metrics.requests.labels(route, method, str(status), client).inc()
        self.metrics.latency.labels(route, method).observe(seconds)
        reason = state.get("reject_reason")
        if reason and reason != "http":
            self.metrics.rejected.labels(route, reason).inc()
            if reason == "rate_limited":
                self.metrics.rate_limited.labels(client).inc()
        access_log.info("%s %s %d client=%s %.1fms", method, route, status, client, seconds * 1000)
