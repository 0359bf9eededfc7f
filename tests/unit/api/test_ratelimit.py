"""Per-client token buckets: burst, then 429 with Retry-After; other clients unaffected; refill."""

from __future__ import annotations

from tests.unit.api.conftest import AppFactory
from tests.unit.api.helpers import WRITER_KEY, RsaKeys, token, transaction

from fraudrisk.api.ratelimit import TokenBucketLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_arithmetic() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 0.5
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("b") == 0.0  # its own bucket
    clock.now += 100
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refilled to the burst, not beyond
    assert retry_after(0.01) == 1 and retry_after(1.2) == 2 and retry_after(0) == 1


def test_burst_then_429_other_client_unaffected_then_refill(
    make_client: AppFactory, keys: RsaKeys
) -> None:
    clock = Clock()
    writer = {"X-API-Key": WRITER_KEY}
    with make_client(rate_per_s=0.25, burst=3, clock=clock) as client:
        burst = [
            client.post("/v1/transactions", json=transaction(i), headers=writer) for i in range(3)
        ]
        limited = client.post("/v1/transactions", json=transaction(9), headers=writer)
        other = client.post(
            "/v1/transactions",
            json=transaction(10),
            headers={"Authorization": f"Bearer {token(keys)}"},
        )
        clock.now += 4.0
        refilled = client.post("/v1/transactions", json=transaction(11), headers=writer)
        again = client.post("/v1/transactions", json=transaction(12), headers=writer)
        metrics = client.get("/metrics").text
    assert [r.status_code for r in burst] == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "4"  # one token at 0.25/s
    assert other.status_code == 200
    assert refilled.status_code == 200 and again.status_code == 429
    assert 'fraudrisk_api_rate_limited_total{client="writer"} 2.0' in metrics
    assert 'reason="rate_limited"' in metrics


def test_rate_limit_comes_after_authentication(make_client: AppFactory) -> None:
    """Unauthenticated calls never drain a client's bucket (they are 401 first)."""
    clock = Clock()
    with make_client(rate_per_s=0.1, burst=1, clock=clock) as client:
        anonymous = [client.post("/v1/transactions", json=transaction()) for _ in range(3)]
        first = client.post(
            "/v1/transactions", json=transaction(), headers={"X-API-Key": WRITER_KEY}
        )
    assert {r.status_code for r in anonymous} == {401}
    assert first.status_code == 200
