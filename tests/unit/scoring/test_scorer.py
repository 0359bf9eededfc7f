"""Loading a registered model and scoring batches: probabilities, decisions, reasons, fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.unit.scoring.served import Served

from fraudrisk.config import FallbackRules, ServingSettings
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.registry.versions import load_pyfunc
from fraudrisk.scoring.model import ModelLoadError, load_model
from fraudrisk.scoring.scorer import Scorer
from fraudrisk.scoring.state_reader import EntityStates


def test_the_alias_resolves_to_its_version_with_the_recorded_card(served: Served) -> None:
    model = load_model(served.settings, "models:/fraud-risk@champion")
    assert model.card.version == "1" and model.card.uri == "models:/fraud-risk/1"
    assert model.card.feature_service == "fraud_scoring_v1"
    assert model.feature_names == FEATURE_NAMES
    assert model.card.thresholds is not None and model.kind == "xgboost"
    assert load_model(served.settings, "models:/fraud-risk/2").card.version == "2"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("models:/fraud-risk@nobody", "has no alias @nobody"),
        ("models:/fraud-risk/99", "has no version 99"),
        ("/no/such/model/dir", "cannot load /no/such/model/dir"),
    ],
)
def test_an_unloadable_model_is_a_clear_error(served: Served, uri: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_model(served.settings, uri)


def test_the_fast_path_equals_the_registered_pyfunc(served: Served) -> None:
    model = load_model(served.settings, "models:/fraud-risk/1")
    inputs = served.rows[list(FEATURE_NAMES)].astype(np.float32)
    expected = load_pyfunc(served.settings, "models:/fraud-risk/1").predict(inputs)
    fast = model.probability(inputs.to_numpy(np.float32))
    np.testing.assert_allclose(fast, expected["fraud_probability"].to_numpy(), atol=1e-9)


def scorer(served: Served, **serving: object) -> Scorer:
    model = load_model(served.settings, "models:/fraud-risk@champion")
    return Scorer(model, served.states, ServingSettings(**serving))


def test_a_batch_gets_scores_decisions_and_positive_reasons(served: Served) -> None:
    scored = scorer(served).score(served.batch)
    assert len(scored) == len(served.batch) and not scored.fallback
    review, decline = scorer(served).thresholds or (0, 0)
    expected = np.where(
        scored.risk_score >= decline,
        "decline",
        np.where(scored.risk_score >= review, "review", "approve"),
    )
    assert scored.decision.tolist() == expected.tolist()
    assert {"approve", "review"} <= set(scored.decision.tolist())
    for text in scored.reason_codes:
        reasons = json.loads(text)
        assert len(reasons) <= 3
        contributions = [r["contribution"] for r in reasons]
        assert all(c > 0 for c in contributions) and contributions == sorted(contributions)[::-1]
        assert all(r["feature"] in FEATURE_NAMES for r in reasons)


def test_flagged_only_explains_reviews_and_declines(served: Served) -> None:
    scored = scorer(served, reason_codes_for="flagged").score(served.batch)
    approved = scored.decision == "approve"
    assert approved.any() and (~approved).any()
    assert all(text == "[]" for text, a in zip(scored.reason_codes, approved, strict=True) if a)
    assert any(text != "[]" for text, a in zip(scored.reason_codes, approved, strict=True) if not a)


def test_configured_thresholds_override_the_model_s(served: Served) -> None:
    scored = scorer(served, review_threshold=0.0, decline_threshold=1.0).score(served.batch)
    assert set(scored.decision.tolist()) <= {"review", "decline"}
    assert (scored.decision == "review").sum() >= (scored.risk_score < 1.0).sum()


class BrokenStore:
    def read(self, customer_ids: object, terminal_ids: object) -> EntityStates:
        raise ConnectionError("online store down")


def test_every_transaction_gets_a_rules_decision_when_the_store_fails(served: Served) -> None:
    model = load_model(served.settings, "models:/fraud-risk@champion")
    rules = FallbackRules(review_amount=50.0, decline_amount=150.0)
    scored = Scorer(model, BrokenStore(), ServingSettings(fallback=rules)).score(served.batch)
    assert scored.fallback and len(scored) == len(served.batch)
    amounts = served.batch.tx_amount
    assert ((scored.decision == "decline") == (amounts >= 150)).all()
    assert ((scored.decision == "review") == ((amounts >= 50) & (amounts < 150))).all()
    assert json.loads(scored.reason_codes[int(np.argmax(amounts))])[-1]["rule"] == "amount_at_least"


def test_rules_alone_use_velocity_from_the_state(served: Served) -> None:
    rules = FallbackRules(review_amount=1e9, decline_amount=1e9, review_tx_per_hour=1)
    scored = Scorer(None, served.states, ServingSettings(fallback=rules)).score(served.batch)
    assert scored.fallback and scored.model_version == "rules"
    assert (scored.decision == "review").all()  # every transaction is its own first in the hour
