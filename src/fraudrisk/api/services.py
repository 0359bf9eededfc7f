"""What the routes call: admission (auth, scope, rate limit), edge checks, and the two modes.

Sync mode answers from the scorer and hands the scored batch to the alert-store writer
(:mod:`fraudrisk.api.store_sink`), which stores it in the background.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from fraudrisk.api.async_mode import DeliveryError, TransactionSink
from fraudrisk.api.auth import Authenticator, Principal
from fraudrisk.api.errors import ApiError, invalid
from fraudrisk.api.models import PAN_FIELD, FieldError, Mode, Readiness, TransactionIn
from fraudrisk.api.prometheus import ApiMetrics
from fraudrisk.api.ratelimit import TokenBucketLimiter, retry_after
from fraudrisk.api.relay import KafkaRelay
from fraudrisk.api.store_sink import ScoreStoreWriter
from fraudrisk.api.subscriptions import StreamHub, score_events
from fraudrisk.api.sync_mode import ScoringService, result_of
from fraudrisk.api.tokens import PanTokenizer
from fraudrisk.config import Settings
from fraudrisk.schemas import Transaction
from fraudrisk.vocab import ALERT_DECISIONS

log = logging.getLogger(__name__)


@dataclass
class ApiServices:
    """The parts of one API process."""

    settings: Settings
    metrics: ApiMetrics
    auth: Authenticator
    limiter: TokenBucketLimiter
    tokenizer: PanTokenizer | None
    scoring: ScoringService
    hub: StreamHub
    sink: TransactionSink | None
    relay: KafkaRelay | None
    store: ScoreStoreWriter | None = None

    # ----------------------------------------------------------------------------- admission
    def admit(
        self, request: Request, api_key: str | None, bearer: str | None, scope: str
    ) -> Principal:
        """Authenticate, authorise and rate-limit a request (401, 403, 429)."""
        principal = self.auth.authenticate(api_key, bearer)
        request.state.client = principal.client
        self.auth.authorize(principal, scope)
        self.throttle(principal.client)
        return principal

    def throttle(self, client: str) -> None:
        """Take a token of the client's bucket.

        Raises:
            ApiError: 429 with ``Retry-After`` when the bucket is empty.
        """
        wait = self.limiter.take(client)
        if wait > 0:
            seconds = retry_after(wait)
            raise ApiError(
                429,
                "Too Many Requests",
                f"rate limit of {self.limiter.rate:g}/s exceeded; retry in {seconds} s",
                "rate_limited",
                headers={"Retry-After": str(seconds)},
            )

    # ----------------------------------------------------------------------------- edge checks
    def prepare(self, items: Sequence[TransactionIn], prefix: str = "") -> list[Transaction]:
        """Validated client transactions as platform transactions: card numbers tokenised.

        Checks what depends on the settings: the batch size (413), the lake epoch, repeated
        transaction ids and whether card numbers can be tokenised (422).
        """
        if len(items) > self.settings.api.max_batch:
            raise ApiError(
                413,
                "Content Too Large",
                f"{len(items)} transactions, at most {self.settings.api.max_batch} per request",
                "too_large",
            )
        epoch = dt.datetime.fromisoformat(self.settings.lake.epoch)
        errors: list[FieldError] = []
        first: dict[int, int] = {}
        out = []
        for row, item in enumerate(items):
            where = f"{prefix}[{row}]." if prefix else ""
            if item.tx_datetime < epoch:
                message = f"before the lake epoch {epoch.date()}"
                errors.append(FieldError(field=f"{where}tx_datetime", message=message))
            seen = first.setdefault(item.transaction_id, row)
            if seen != row:
                errors.append(
                    FieldError(field=f"{where}transaction_id", message=f"repeats {prefix}[{seen}]")
                )
            out.append(self._tokenised(item, f"{where}{PAN_FIELD}", errors))
        if errors:
            raise invalid(errors[:20])
        return out

    def _tokenised(self, item: TransactionIn, field: str, errors: list[FieldError]) -> Transaction:
        fields: dict[str, Any] = item.model_dump(
            exclude={PAN_FIELD, "tx_time_seconds", "tx_time_days"}
        )
        if item.card_number is not None:
            if self.tokenizer is None:
                message = "card numbers are not accepted (no token key configured): send card_token"
                errors.append(FieldError(field=field, message=message))
            else:
                fields["card_token"] = self.tokenizer.token(item.card_number)
        return Transaction.model_validate(fields)

    # ----------------------------------------------------------------------------- modes
    def mode(self, requested: Mode | None) -> Mode:
        """The request's mode, or the configured default.

        Raises:
            ApiError: 400 for async mode when Kafka is disabled.
        """
        mode: Mode = requested or self.settings.api.default_mode
        if mode == "async" and self.sink is None:
            detail = "async mode is disabled here (FRAUDRISK_API__KAFKA_ENABLED=false): use sync"
            raise ApiError(400, "Bad Request", detail, "bad_request")
        return mode

    async def score(self, transactions: Sequence[Transaction]) -> list[dict[str, Any]]:
        """Sync mode: score, queue for the store, push to subscribers, return the results.

        Raises:
            ApiError: 503 if no scorer is available.
        """
        try:
            scored = await self.scoring.score(transactions)
        except RuntimeError:
            raise ApiError(
                503,
                "Service Unavailable",
                "no scorer is loaded yet; retry",
                "unavailable",
                headers={"Retry-After": "5"},
            ) from None
        if self.store is not None:  # a queue append: the writer thread does the I/O
            self.store.submit(scored.batch, scored.scores, [t.tx_datetime for t in transactions])
        for event in score_events(scored.rows, ALERT_DECISIONS):
            self.hub.publish(event)
        self.metrics.transactions.labels("sync").inc(len(scored.rows))
        return [result_of(row) for row in scored.rows]

    async def enqueue(self, transactions: Sequence[Transaction]) -> list[int]:
        """Async mode: produce to Kafka and wait for the acknowledgements.

        Raises:
            ApiError: 503 if Kafka did not acknowledge every transaction.
        """
        assert self.sink is not None
        try:
            await self.sink.send(transactions)
        except DeliveryError as error:
            raise ApiError(
                503, "Service Unavailable", str(error), "unavailable", headers={"Retry-After": "1"}
            ) from None
        self.metrics.transactions.labels("async").inc(len(transactions))
        return [t.transaction_id for t in transactions]

    # ----------------------------------------------------------------------------- health
    def readiness(self) -> Readiness:
        """Ready when something scores (model or rules) and, if async by default, Kafka answers."""
        model = self.scoring.state
        kafka = (
            "disabled" if self.sink is None else "ok" if self.sink.reachable() else "unreachable"
        )
        relay = "disabled" if self.relay is None else self.relay.state
        store = "disabled" if self.store is None else self.store.state
        needs_kafka = self.settings.api.default_mode == "async"
        ready = model != "not_loaded" and (kafka == "ok" or not needs_kafka)
        return Readiness(
            ready=ready,
            model=model,
            model_versions=self.scoring.versions(),
            kafka=kafka,
            stream_relay=relay,
            card_tokens=self.tokenizer is not None,
            alert_store=store,
        )
