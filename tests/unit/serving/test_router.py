"""Traffic splits: canary share within statistical bounds, sticky A/B, shadow off the path."""

from __future__ import annotations

import numpy as np
import pytest

from fraudrisk.scoring.vectors import TransactionBatch
from fraudrisk.serving.router import STABLE, Router, TrafficSplit, ab_buckets


def batch(customers: list[int]) -> TransactionBatch:
    n = len(customers)
    ids = np.arange(n, dtype=np.int64)
    return TransactionBatch(
        ids, ids + 1_600_000_000, np.array(customers, np.int64), ids, np.ones(n)
    )


def share(router: Router, requests: int) -> float:
    one = batch([1])
    hits = sum("canary" in router.assign(one).rows for _ in range(requests))
    return hits / requests


@pytest.mark.parametrize("percent", [5, 20, 50])
def test_canary_share_is_within_four_sigma(percent: int) -> None:
    n, p = 4000, percent / 100
    observed = share(Router(TrafficSplit("canary", percent, seed=percent), True), n)
    assert abs(observed - p) <= 4 * (p * (1 - p) / n) ** 0.5


def test_zero_percent_or_no_candidate_sends_nothing_to_the_canary() -> None:
    assert share(Router(TrafficSplit("canary", 0), True), 500) == 0
    assert share(Router(TrafficSplit("canary", 100), False), 500) == 0
    assert share(Router(TrafficSplit("canary", 100), True), 500) == 1


def test_ab_is_sticky_per_customer_and_splits_by_percent() -> None:
    router = Router(TrafficSplit("ab", 30), True)
    customers = list(range(3000))
    first = router.assign(batch(customers)).rows
    again = router.assign(batch(customers[::-1])).rows
    challenger = set(np.array(customers)[first["challenger"]].tolist())
    assert challenger == set(np.array(customers[::-1])[again["challenger"]].tolist())
    assert abs(len(challenger) / 3000 - 0.3) <= 4 * (0.3 * 0.7 / 3000) ** 0.5
    assert len(first[STABLE]) + len(first["challenger"]) == 3000


def test_ab_buckets_are_stable_across_processes() -> None:
    assert ab_buckets(np.array([0, 1, 42, 10**12])).tolist() == [
        int(b) for b in ab_buckets(np.array([0, 1, 42, 10**12]))
    ]
    assert ab_buckets(np.array([42])).tolist() == ab_buckets(np.array([42])).tolist()
    assert ab_buckets(np.arange(1000)).min() >= 0 and ab_buckets(np.arange(1000)).max() < 100


def test_shadow_answers_from_stable_and_flags_the_shadow() -> None:
    assignment = Router(TrafficSplit("shadow", 0), True).assign(batch([1, 2, 3]))
    assert list(assignment.rows) == [STABLE] and assignment.shadow


@pytest.mark.parametrize(
    ("percent", "key"), [(101, "customer_id"), (-1, "customer_id"), (10, "card_number")]
)
def test_invalid_splits_are_refused(percent: int, key: str) -> None:
    with pytest.raises(ValueError):
        TrafficSplit("ab", percent, key)
