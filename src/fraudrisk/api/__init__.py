"""The Transaction API: transactions in over REST, decisions out over REST and WebSocket.

Run it with ``fraudrisk api serve``; build it with :func:`fraudrisk.api.app.create_app`.
Full contract (auth setup, modes, WebSocket protocol, curl examples): ``docs/api.md``.

* ``POST /v1/transactions`` and ``POST /v1/transactions:batch`` (``{"transactions": [...]}``):
  strict validation (422 naming the field, never the value; 413 over the size limits);
  ``?mode=sync`` scores in process (200), ``?mode=async`` produces to Kafka and answers 202 once
  acknowledged (503 otherwise).
* Card numbers become keyed ``card_token`` (HMAC-SHA256) at the edge; without a token key they
  are refused (422). They are never stored, logged or echoed.
* ``X-API-Key`` (stored as SHA-256) or ``Authorization: Bearer <JWT>``; scopes
  ``transactions:write`` and ``scores:read``; per-client token buckets (429 + ``Retry-After``).
* ``WS /v1/stream``: scores and alerts of the API and of the stream scorer (via Kafka).
* ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.

Modules: :mod:`~fraudrisk.api.app` (factory), :mod:`~fraudrisk.api.routes`,
:mod:`~fraudrisk.api.services` (admission, edge checks, modes), :mod:`~fraudrisk.api.models`,
:mod:`~fraudrisk.api.tokens`, :mod:`~fraudrisk.api.auth`, :mod:`~fraudrisk.api.ratelimit`,
:mod:`~fraudrisk.api.sync_mode`, :mod:`~fraudrisk.api.async_mode`,
:mod:`~fraudrisk.api.subscriptions`,
:mod:`~fraudrisk.api.websocket`, :mod:`~fraudrisk.api.relay`, :mod:`~fraudrisk.api.errors`,
:mod:`~fraudrisk.api.middleware`, :mod:`~fraudrisk.api.prometheus`, :mod:`~fraudrisk.cli.api`.
"""
