"""Per-client rate limits: one token bucket per client, in process.

Each client (API key name or ``jwt:<subject>``) has a bucket of ``burst`` tokens refilled at
``rate`` tokens per second; a request takes one. An empty bucket answers how long until a token
is back, which the API sends as ``Retry-After`` (whole seconds, at least 1). Buckets live in
this process (one API replica = its own limits); the least recently used are forgotten beyond
``max_clients`` (a forgotten client starts again with a full bucket).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBucketLimiter:
    """Token buckets keyed by client."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        """Limits of ``rate`` requests per second with bursts of ``burst``.

        Args:
            rate: Tokens added per second.
            burst: Bucket size (and the tokens of a new client).
            clock: Monotonic seconds (injected by tests).
            max_clients: Buckets kept at most.
        """
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from the client's bucket.

        Returns:
            0.0 when allowed, else the seconds until enough tokens are back (nothing taken).
        """
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= cost:
                tokens -= cost
            else:
                wait = (cost - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> int:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait))
