"""The engine: threshold decisions exactly as ``decide``, precedence of actions, batch == scalar."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.policy.engine import PolicyEngine, threshold_decision
from fraudrisk.policy.errors import PolicyInputError
from fraudrisk.policy.inputs import PolicyBatch
from fraudrisk.policy.loader import load_policy_text
from fraudrisk.schemas import Transaction
from fraudrisk.scoring.decisions import decide
from fraudrisk.vocab import APPROVE, DECLINE, REVIEW


def policy_text(*rules: str, review: float = 0.2, decline: float = 0.8) -> str:
    head = f"name: t\nthresholds: {{review: {review}, decline: {decline}}}\nalert_budget: 10\n"
    return head + ("rules:\n" + "".join(rules) if rules else "")


def rule(name: str, when: str, action: str, extra: str = "") -> str:
    return f"  - {{name: {name}, when: '{when}', action: {action}, reason: {name} fired{extra}}}\n"


def engine(*rules: str, **thresholds: float) -> PolicyEngine:
    return PolicyEngine(load_policy_text(policy_text(*rules, **thresholds)))


def one(engine_: PolicyEngine, risk: float, amount: float = 10.0, **features: float):
    transaction = {"tx_amount": amount, "tx_datetime": dt.datetime(2018, 4, 1, 12)}
    return engine_.decide_one(risk, transaction, features, reasons=())


EDGES = [0.0, 0.2, 0.2 - 1e-12, 0.8, 0.8 + 1e-12, 1.0, 0.5, math.nan, -0.1, 1.1]


@pytest.mark.parametrize(("review", "decline"), [(0.2, 0.8), (0.045, 0.85), (0.01, 0.02)])
def test_thresholds_only_is_exactly_decide(review, decline):
    rng = np.random.default_rng(7)
    risk = np.concatenate([rng.random(5000), rng.beta(0.3, 5, 5000), EDGES, [review, decline]])
    thresholds_only = engine(review=review, decline=decline)
    batch = thresholds_only.decide_batch(PolicyBatch(risk))
    expected = decide(risk, review, decline)
    assert np.array_equal(batch.decision, expected)
    assert np.array_equal(batch.threshold_decision, expected)
    scalar = [thresholds_only.decide_one(float(r), {}).decision for r in risk]
    assert scalar == expected.tolist()
    assert [threshold_decision(float(r), review, decline) for r in risk] == expected.tolist()
    assert batch.fired.shape == (len(risk), 0) and (batch.decided_by == -1).all()


PRECEDENCE = engine(
    rule("allow-small", "amount < 1", "allow"),
    rule("decline-big", "amount > 1000", "decline"),
    rule("review-odd", "customer_id_nb_tx_1hour_window >= 5", "force_review"),
    rule("review-odd-too", "customer_id_nb_tx_1hour_window >= 6", "force_review"),
)


@pytest.mark.parametrize(
    ("risk", "amount", "velocity", "decision", "by"),
    [
        (0.9, 0.5, 9, APPROVE, "allow-small"),  # allow beats the decline threshold and rules
        (0.0, 5000, 9, DECLINE, "decline-big"),  # a decline rule beats low risk and reviews
        (0.9, 5000, 0, DECLINE, "decline-big"),  # the rule is named even when risk agrees
        (0.9, 10, 9, DECLINE, None),  # the decline threshold beats force_review
        (0.5, 10, 9, REVIEW, "review-odd"),  # the first force_review rule in file order
        (0.0, 10, 9, REVIEW, "review-odd"),  # force_review raises an approval
        (0.5, 10, 0, REVIEW, None),
        (0.0, 10, 0, APPROVE, None),
    ],
)
def test_precedence_of_actions(risk, amount, velocity, decision, by):
    found = one(PRECEDENCE, risk, amount, customer_id_nb_tx_1hour_window=velocity)
    assert (found.decision, found.decided_by) == (decision, by)
    batch = PRECEDENCE.decide_batch(
        PolicyBatch(
            np.array([risk]),
            {"tx_amount": [amount], "customer_id_nb_tx_1hour_window": [velocity]},
        )
    )
    assert batch.row(0) == found


def test_fired_rules_and_reasons_are_listed_in_file_order():
    found = one(PRECEDENCE, 0.9, 0.5, customer_id_nb_tx_1hour_window=9)
    assert found.fired == ("allow-small", "review-odd", "review-odd-too")
    assert found.reasons == ("allow-small fired", "review-odd fired", "review-odd-too fired")


ROUTING = engine(
    rule("vip", "amount >= 500", "route", ", queue: high-value"),
    rule("everything", "amount >= 0", "route", ", queue: general"),
    rule("spike", "customer_id_amount_ratio_30day_window >= 3", "raise_priority", ", factor: 2"),
    rule(
        "huge-spike", "customer_id_amount_ratio_30day_window >= 10", "raise_priority", ", factor: 5"
    ),
)


@pytest.mark.parametrize(
    ("risk", "amount", "ratio", "route", "factor"),
    [
        (0.5, 800, 12, "high-value", 5.0),  # first route wins; largest factor
        (0.5, 100, 4, "general", 2.0),
        (0.5, 100, 1, "general", 1.0),
        (0.1, 800, 12, None, 1.0),  # an approval makes no alert: no route, factor 1
        (math.nan, 800, 12, None, 1.0),
    ],
)
def test_route_and_priority_shape_alerts_only(risk, amount, ratio, route, factor):
    found = one(ROUTING, risk, amount, customer_id_amount_ratio_30day_window=ratio)
    assert (found.route, found.priority_factor) == (route, factor)
    assert found.decision == threshold_decision(risk, 0.2, 0.8)  # never changes the decision
    batch = ROUTING.decide_batch(
        PolicyBatch(
            np.array([risk]),
            {"tx_amount": [amount], "customer_id_amount_ratio_30day_window": [ratio]},
        )
    )
    assert batch.row(0) == found


def random_batch(rng: np.random.Generator, n: int) -> tuple[PolicyBatch, list[dict], list]:
    start = np.datetime64("2018-04-01T00:00:00", "us")
    columns: dict[str, object] = {
        "tx_amount": np.round(rng.lognormal(3, 1.5, n), 2),
        "tx_datetime": start + rng.integers(0, 86_400 * 30, n).astype("timedelta64[s]"),
        "channel": rng.choice(["ecom", "pos", None], n).tolist(),
    }
    for name in FEATURE_NAMES:
        if name != "tx_amount":
            columns[name] = rng.gamma(1.0, 2.0, n).astype(np.float32)
    columns["terminal_id_risk_7day_window"] = rng.random(n).astype(np.float32)
    reasons = [list(rng.choice(FEATURE_NAMES, rng.integers(0, 4), replace=False)) for _ in range(n)]
    rows = [{name: values[i] for name, values in columns.items()} for i in range(n)]
    return PolicyBatch(rng.beta(0.5, 4, n), columns, reasons), rows, reasons


RULES = (
    rule("tiny", "amount < 2 and risk < 0.5", "allow"),
    rule("night", "amount >= 200 and hour(tx_datetime) <= 6 and risk >= 0.3", "decline"),
    rule("terminal", "terminal_id_risk_7day_window >= 0.7", "force_review"),
    rule("weekend-ecom", "weekday(tx_datetime) >= 5 and channel == ''ecom''", "force_review"),
    rule("big", "amount >= 250", "route", ", queue: high-value"),
    rule(
        "spike",
        "''customer_id_amount_ratio_30day_window'' in reasons or max(amount / "
        "customer_id_avg_amount_30day_window, 0) > 4",
        "raise_priority",
        ", factor: 3",
    ),
)


def test_batch_and_scalar_agree_row_by_row():
    rng = np.random.default_rng(11)
    policy_engine = engine(*RULES)
    batch, rows, reasons = random_batch(rng, 3000)
    decided = policy_engine.decide_batch(batch)
    for i in range(len(batch)):
        scalar = policy_engine.decide_one(float(batch.risk[i]), rows[i], rows[i], reasons[i])
        assert decided.row(i) == scalar, i
    assert set(decided.decision.tolist()) == {APPROVE, REVIEW, DECLINE}
    assert decided.fired.any(axis=0).all()  # every rule fired somewhere
    hits = policy_engine.rule_hits(batch)
    assert np.array_equal(hits, decided.fired)


def test_a_transaction_model_and_feature_mapping_are_accepted():
    policy_engine = engine(rule("night", "hour(tx_datetime) < 6 and channel == ''''", "decline"))
    transaction = Transaction(
        transaction_id=1,
        tx_datetime=dt.datetime(2018, 4, 1, 3, tzinfo=dt.UTC),
        customer_id=2,
        terminal_id=3,
        tx_amount=10.0,
    )
    assert policy_engine.decide_one(0.0, transaction).decision == DECLINE


def test_missing_inputs_are_named():
    policy_engine = engine(rule("r", "terminal_id_risk_7day_window > 0.5", "decline"))
    with pytest.raises(PolicyInputError, match="terminal_id_risk_7day_window"):
        policy_engine.decide_one(0.1, {"tx_amount": 1.0})
    with pytest.raises(PolicyInputError, match="terminal_id_risk_7day_window"):
        policy_engine.decide_batch(PolicyBatch(np.zeros(2), {"tx_amount": [1.0, 2.0]}))
    with pytest.raises(PolicyInputError, match="shape"):
        policy_engine.decide_batch(
            PolicyBatch(np.zeros(2), {"terminal_id_risk_7day_window": [1.0]})
        )
    reads_reasons = engine(rule("r", "''tx_amount'' in reasons", "decline"))
    with pytest.raises(PolicyInputError, match="reason codes"):
        reads_reasons.decide_one(0.1, {})
    with pytest.raises(PolicyInputError, match="reason codes"):
        reads_reasons.decide_batch(PolicyBatch(np.zeros(1)))
    scorer_json = '[{"feature":"tx_amount","value":5.0,"contribution":0.3}]'
    assert reads_reasons.decide_one(0.1, {}, reasons=scorer_json).decision == DECLINE


def test_decision_records_are_json_ready():
    found = one(ROUTING, 0.5, 800, customer_id_amount_ratio_30day_window=4).to_dict()
    assert found == {
        "decision": REVIEW,
        "threshold_decision": REVIEW,
        "decided_by": None,
        "fired": ("vip", "everything", "spike"),
        "reasons": ("vip fired", "everything fired", "spike fired"),
        "route": "high-value",
        "priority_factor": 2.0,
    }
