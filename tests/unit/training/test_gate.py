"""The validation gate: floors, regression against the champion, every failure with numbers."""

from __future__ import annotations

import math

from fraudrisk.training.gate import GateConfig, HeadToHead, gate

CONFIG = GateConfig(
    min_average_precision=0.6,
    min_auc_roc=0.85,
    min_card_precision_at_100=0.25,
    max_regression={"average_precision": 0.01, "card_precision@100": 0.02},
)
GOOD = {"average_precision": 0.70, "auc_roc": 0.90, "card_precision@100": 0.30}


def test_a_good_candidate_without_champion_passes() -> None:
    result = gate(GOOD, None, CONFIG)
    assert result.passed
    assert result.reasons == []
    assert not result.compared_to_champion


def test_every_floor_failure_is_listed_with_its_numbers() -> None:
    bad = {"average_precision": 0.5, "auc_roc": 0.8, "card_precision_at_100": 0.2}
    result = gate(bad, None, CONFIG)
    assert not result.passed
    assert len(result.reasons) == 3
    assert "average_precision: 0.5000 is below the floor 0.6000" in result.reasons
    assert any("auc_roc: 0.8000" in r and "0.8500" in r for r in result.reasons)
    assert any("card_precision_at_100: 0.2000" in r for r in result.reasons)


def test_missing_and_nan_metrics_fail() -> None:
    result = gate({"average_precision": math.nan, "auc_roc": 0.9}, None, CONFIG)
    assert not result.passed
    assert any("average_precision: nan" in r for r in result.reasons)
    assert any("card_precision_at_100: missing" in r for r in result.reasons)


def test_regression_within_tolerance_passes_beyond_fails() -> None:
    champion = {"average_precision": 0.705, "auc_roc": 0.95, "card_precision_at_100": 0.31}
    within = gate(GOOD, champion, CONFIG)
    assert within.passed, within.reasons
    assert within.compared_to_champion
    champion = {"average_precision": 0.75, "card_precision_at_100": 0.35}
    beyond = gate(GOOD, champion, CONFIG)
    assert not beyond.passed
    assert len(beyond.reasons) == 2
    assert any(
        "average_precision: 0.7000 regresses 0.0500 below the champion's 0.7500 "
        "(tolerance 0.0100)" in r
        for r in beyond.reasons
    )
    assert any("card_precision_at_100" in r and "0.3500" in r for r in beyond.reasons)


def test_metrics_the_champion_lacks_are_not_compared() -> None:
    assert gate(GOOD, {"auc_roc": 0.99}, CONFIG).passed


def test_default_config_and_json_round_trip() -> None:
    result = gate(GOOD, {"average_precision": 0.9})
    assert not result.passed
    assert type(result).model_validate_json(result.model_dump_json()) == result


def _head_to_head(candidate_ap: float, champion_ap: float) -> HeadToHead:
    return HeadToHead(
        period="2018-09-17..2018-09-24",
        transactions=9_000,
        frauds=80,
        champion_version="3",
        candidate={"average_precision": candidate_ap, "auc_roc": 0.9},
        champion={"average_precision": champion_ap, "auc_roc": 0.9},
    )


def test_a_head_to_head_replaces_the_recorded_champion_metrics() -> None:
    recorded = {"average_precision": 0.95}  # the champion on its own, older test folds
    newer_world = gate(GOOD, recorded, CONFIG, head_to_head=_head_to_head(0.62, 0.20))
    assert newer_world.passed, newer_world.reasons
    assert newer_world.comparison.startswith("head-to-head with champion v3 on the hold-out")
    assert newer_world.head_to_head is not None
    assert not gate(GOOD, recorded, CONFIG).passed  # what the recorded metrics alone would say
    worse = gate(GOOD, {"average_precision": 0.1}, CONFIG, head_to_head=_head_to_head(0.5, 0.6))
    assert not worse.passed
    assert any("0.5000 regresses 0.1000 below the champion's 0.6000" in r for r in worse.reasons)


def test_the_fallback_says_why() -> None:
    result = gate(GOOD, {"average_precision": 0.70}, CONFIG, fallback_reason="no fraud")
    assert result.comparison == "recorded test-fold metrics (no fraud)"
    assert gate(GOOD, None, CONFIG).comparison == "no champion: floors only"
