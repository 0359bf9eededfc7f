"""The bundled default policy: found as package data, clean, and doing what its comments say."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from fraudrisk.cases.routing import load_rules
from fraudrisk.config import MonitoringSettings
from fraudrisk.policy.document import ACTIONS
from fraudrisk.policy.engine import PolicyEngine
from fraudrisk.policy.loader import default_policy_path, default_policy_text, load_default_policy
from fraudrisk.policy.types import Environment
from fraudrisk.vocab import APPROVE, DECLINE, REVIEW

ROOT = Path(__file__).resolve().parents[3]
QUEUES = [q.name for q in load_rules().queues]
#: The thresholds training chose for fraud-risk v1 on the handbook data (README, training).
RECORDED_THRESHOLDS = (0.045, 0.85)


def test_the_bundled_copy_is_policies_default_yaml():
    assert default_policy_path().resolve() == (ROOT / "policies" / "default.yaml").resolve()
    assert default_policy_text() == (ROOT / "policies" / "default.yaml").read_text()


def test_it_lints_clean_against_the_routing_queues():
    policy = load_default_policy(Environment.standard(queues=QUEUES))
    document = policy.document
    assert (document.thresholds.review, document.thresholds.decline) == RECORDED_THRESHOLDS
    assert document.alert_budget == MonitoringSettings().alert_budget
    assert 3 <= len(policy.rules) <= 5
    assert set(Counter(r.spec.action for r in policy.rules)) == set(ACTIONS)
    assert all(r.spec.queue in (None, *QUEUES) for r in policy.rules)


def test_its_example_rules_behave_as_commented():
    engine = PolicyEngine(load_default_policy())
    quiet = {
        "terminal_id_risk_7day_window": 0.0,
        "terminal_id_nb_tx_7day_window": 50,
        "customer_id_amount_ratio_30day_window": 1.0,
    }

    def decide(risk, amount, hour=12, reasons=(), **features):
        transaction = {"tx_amount": amount, "tx_datetime": dt.datetime(2018, 4, 2, hour)}
        return engine.decide_one(risk, transaction, quiet | features, reasons)

    assert decide(0.3, 0.5).decision == APPROVE  # tiny amount, allow-listed
    assert decide(0.9, 0.5).decision == DECLINE  # ... unless the model is sure
    night = decide(0.4, 1500, hour=3)
    assert (night.decision, night.decided_by, night.route) == (
        DECLINE,
        "large-at-night",
        "high-value",
    )
    assert decide(0.4, 1500, hour=9).decision == REVIEW
    terminal = decide(0.01, 20, terminal_id_risk_7day_window=0.25)
    assert (terminal.decision, terminal.decided_by) == (REVIEW, "risky-terminal")
    spike = decide(
        0.1,
        80,
        reasons=["customer_id_amount_ratio_30day_window"],
        customer_id_amount_ratio_30day_window=6.0,
    )
    assert (spike.decision, spike.priority_factor) == (REVIEW, 2.0)
    assert decide(0.01, 80, customer_id_amount_ratio_30day_window=6.0).decision == APPROVE
