"""Cost-based review/decline thresholds on held-out scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fraudrisk.training.thresholds import DecisionCosts, Thresholds, choose_thresholds, decide


def scored(seed: int = 0, n: int = 5000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.02).astype(int)
    p = np.clip(np.where(y == 1, rng.beta(3, 3, n), rng.beta(1, 6, n)), 0, 1)
    amounts = rng.gamma(2.0, 50.0, n)
    return y, p, amounts


def brute_force_cost(
    y: np.ndarray,
    p: np.ndarray,
    review: float,
    decline: float,
    costs: DecisionCosts,
    amounts: np.ndarray | None = None,
) -> float:
    loss = amounts if amounts is not None else np.full(len(y), costs.fraud_loss)
    total = 0.0
    for label, score, amount in zip(y, p, loss, strict=True):
        if score >= decline:
            total += 0 if label else costs.decline_cost
        elif score >= review:
            total += costs.review_cost + (
                amount * (1 - costs.review_detection_rate) if label else 0
            )
        elif label:
            total += amount
    return total


def test_a_hand_computed_case() -> None:
    # Two frauds scored 0.9 and 0.6, three genuine scored 0.1, 0.2, 0.7.
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.1, 0.2, 0.7])
    costs = DecisionCosts(fraud_loss=100, review_cost=5, decline_cost=20)
    t = choose_thresholds(y, p, costs)
    # Best: review 0.6 and 0.7 (cost 10), decline 0.9 (cost 0) -> 10; declining 0.7 costs 20.
    assert t.total_cost == pytest.approx(10.0)
    assert decide(p, t).tolist() == ["decline", "review", "approve", "approve", "review"]
    assert t.recall_at_review == 1.0
    assert t.review_rate == pytest.approx(0.4)
    assert t.decline_rate == pytest.approx(0.2)
    assert t.expected_cost == pytest.approx(2.0)


def test_the_grid_optimum_matches_a_brute_force_evaluation() -> None:
    y, p, amounts = scored()
    costs = DecisionCosts(review_detection_rate=0.9)
    t = choose_thresholds(y, p, costs, amounts=amounts)
    assert t.total_cost == pytest.approx(
        brute_force_cost(y, p, t.review, t.decline, costs, amounts)
    )
    assert t.review <= t.decline
    # Better than doing nothing, reviewing everything, or declining everything.
    for review, decline in [(2.0, 2.0), (0.0, 2.0), (0.0, 0.0)]:
        assert t.total_cost <= brute_force_cost(y, p, review, decline, costs, amounts)


def test_the_alert_budget_caps_the_review_rate() -> None:
    y, p, _ = scored()
    free = choose_thresholds(y, p, DecisionCosts(review_cost=0.5, decline_cost=1000))
    capped = choose_thresholds(
        y, p, DecisionCosts(review_cost=0.5, decline_cost=1000, max_review_rate=0.01)
    )
    assert free.review_rate > 0.01
    assert capped.review_rate <= 0.01
    assert capped.total_cost >= free.total_cost


def test_expensive_declines_mean_no_declines() -> None:
    y, p, _ = scored()
    t = choose_thresholds(y, p, DecisionCosts(decline_cost=1e9))
    assert not ((decide(p, t) == "decline") & (y == 0)).any()
    assert t.decline > p[y == 0].max()
    free_reviews = choose_thresholds(y, p, DecisionCosts(review_cost=0.0, decline_cost=1e9))
    assert free_reviews.review == 0.0  # ties go to the lowest review threshold (most recall)
    assert free_reviews.recall_at_review == 1.0


def test_thresholds_are_json_serialisable() -> None:
    y, p, amounts = scored()
    t = choose_thresholds(y, p, amounts=amounts)
    data = json.loads(t.model_dump_json())
    assert {
        "review",
        "decline",
        "expected_cost",
        "review_rate",
        "decline_rate",
        "recall_at_review",
    } <= set(data)
    assert Thresholds.model_validate(data) == t


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        choose_thresholds([], [])
    with pytest.raises(ValueError):
        choose_thresholds([0, 1], [0.1, 0.2], amounts=[1.0])
