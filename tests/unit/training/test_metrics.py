"""Hand-computed cases for the handbook metrics (AUC ROC, AP, Card Precision@k)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudrisk.training.metrics import (
    auc_roc,
    average_precision,
    card_precision_at_k,
    expected_calibration_error,
    performance_summary,
    reliability_bins,
)


def scored_frame(rows: list[tuple[int, int, int, float]]) -> pd.DataFrame:
    """Rows of (tx_time_days, customer_id, tx_fraud, prediction)."""
    return pd.DataFrame(rows, columns=["tx_time_days", "customer_id", "tx_fraud", "prediction"])


def test_auc_and_ap_on_a_hand_computed_example() -> None:
    labels = [0, 0, 1, 1]
    scores = [0.1, 0.4, 0.35, 0.8]
    # Pairs (fraud, legit) ranked right: (0.35>0.1), (0.8>0.1), (0.8>0.4) -> 3 of 4.
    assert auc_roc(labels, scores) == pytest.approx(0.75)
    # Ranked: 0.8 (1), 0.4 (0), 0.35 (1): 0.5 * 1 + 0.5 * 2/3.
    assert average_precision(labels, scores) == pytest.approx(5 / 6)


def test_score_ties_rank_the_smaller_customer_id_first() -> None:
    frame = scored_frame([(0, 3, 0, 0.9), (0, 1, 1, 0.9), (0, 2, 1, 0.5)])
    assert card_precision_at_k(frame, k=1).per_day == (1.0,)
    frame = scored_frame([(0, 1, 0, 0.9), (0, 3, 1, 0.9), (0, 2, 1, 0.5)])
    assert card_precision_at_k(frame, k=1).per_day == (0.0,)


def test_divisor_stays_k_on_a_day_with_fewer_than_k_cards() -> None:
    frame = scored_frame([(0, 1, 1, 0.9), (0, 2, 1, 0.1)])
    result = card_precision_at_k(frame, k=5)
    assert result.per_day == (0.4,)
    assert result.mean == pytest.approx(0.4)


def test_card_detected_on_day_0_is_removed_on_day_1_even_with_a_new_fraud() -> None:
    frame = scored_frame(
        [
            (1, 1, 1, 0.99),  # detected yesterday: dropped although it is the top score
            (1, 2, 0, 0.60),
            (1, 3, 1, 0.50),
            (0, 1, 1, 0.90),  # detected on day 0
            (0, 3, 1, 0.20),  # fraudulent but outside the top 1: stays a candidate
        ]
    )
    result = card_precision_at_k(frame, k=1)
    assert result.days == (0, 1)
    assert result.per_day == (1.0, 0.0)
    assert result.compromised_cards_per_day == (2, 1)
    assert result.mean == pytest.approx(0.5)
    # With k=2 both frauds of day 0 are detected, so day 1 keeps only the legit card 2.
    assert card_precision_at_k(frame, k=2).per_day == (1.0, 0.0)


def test_a_day_whose_cards_were_all_detected_counts_as_zero() -> None:
    frame = scored_frame([(0, 1, 1, 0.9), (1, 1, 1, 0.9)])
    result = card_precision_at_k(frame, k=1)
    assert result.per_day == (1.0, 0.0)
    assert result.compromised_cards_per_day == (1, 0)


def test_a_card_takes_its_max_score_and_its_max_label() -> None:
    frame = scored_frame(
        [
            (0, 5, 1, 0.2),  # card 5: score 0.8 (other tx), label 1 (this tx)
            (0, 5, 0, 0.8),
            (0, 6, 0, 0.7),
            (0, 6, 0, 0.1),
        ]
    )
    result = card_precision_at_k(frame, k=1)
    assert result.per_day == (1.0,)
    assert result.compromised_cards_per_day == (1,)


def test_custom_score_column_and_bad_inputs() -> None:
    frame = scored_frame([(0, 1, 1, 0.9)]).rename(columns={"prediction": "p"})
    assert card_precision_at_k(frame, k=1, score_col="p").mean == 1.0
    with pytest.raises(ValueError, match="missing columns"):
        card_precision_at_k(frame, k=1)
    with pytest.raises(ValueError, match="k must be"):
        card_precision_at_k(frame, k=0, score_col="p")
    with pytest.raises(ValueError, match="at least one"):
        card_precision_at_k(frame.iloc[:0], k=1, score_col="p")


def test_performance_summary_keys_and_values() -> None:
    frame = scored_frame([(0, 1, 0, 0.1), (0, 2, 0, 0.4), (1, 3, 1, 0.35), (1, 4, 1, 0.8)])
    summary = performance_summary(frame, "prediction", k=2)
    assert list(summary) == ["auc_roc", "average_precision", "card_precision@2"]
    assert summary["auc_roc"] == pytest.approx(0.75)
    assert summary["average_precision"] == pytest.approx(5 / 6)
    assert summary["card_precision@2"] == pytest.approx((0.0 + 1.0) / 2)


def test_reliability_bins_equal_a_brute_force_quantile_split() -> None:
    rng = np.random.default_rng(3)
    scores = rng.beta(0.3, 8, 5000)
    labels = rng.random(5000) < scores
    curve = reliability_bins(labels, scores, bins=10)
    assert len(curve) == 10 and sum(b.count for b in curve) == 5000
    order = np.argsort(scores, kind="stable")
    for number, chunk in enumerate(np.array_split(order, 10)):  # distinct scores: equal counts
        assert curve[number].count == len(chunk)
        assert curve[number].mean_score == pytest.approx(scores[chunk].mean())
        assert curve[number].fraud_rate == pytest.approx(labels[chunk].mean())
    gaps = [abs(b.fraud_rate - b.mean_score) * b.count for b in curve]
    assert expected_calibration_error(curve) == pytest.approx(sum(gaps) / 5000)


def test_a_calibrated_model_has_a_small_ece_and_a_halved_one_a_large_one() -> None:
    rng = np.random.default_rng(4)
    risk = rng.beta(0.2, 20, 200_000)  # ≈ 1 % fraud, as the handbook's
    frauds = rng.random(len(risk)) < risk
    rate = frauds.mean()
    calibrated = expected_calibration_error(reliability_bins(frauds, risk))
    halved = expected_calibration_error(reliability_bins(frauds, risk / 2))
    assert calibrated / rate < 0.1 < 0.4 < halved / rate


def test_ties_stay_in_one_bin() -> None:
    curve = reliability_bins([0, 1, 0, 0], [0.1, 0.1, 0.1, 0.9], bins=4)
    assert [(b.count, b.fraud_rate) for b in curve] == [(3, pytest.approx(1 / 3)), (1, 0.0)]
    with pytest.raises(ValueError, match="as many labels as scores"):
        reliability_bins([1], [0.1, 0.2])
