"""The backtest: every figure equal to a brute force (the policy row by row with decide_one).

The brute force knows nothing of the vectorised code: it loops over the rows of a small
synthetic window, applies the policy with :meth:`PolicyEngine.decide_one` (reasons given only
to the rows the policy's review threshold flags, as the live scorer explains them), and counts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pytest

import fraudrisk.policy.backtest as backtest_module
from fraudrisk.policy.backtest import Window, backtest, overlap_counts
from fraudrisk.policy.backtest_sweeps import threshold_grid
from fraudrisk.policy.backtest_window import reason_masks
from fraudrisk.policy.document import CheckedPolicy, Costs, check_document
from fraudrisk.policy.engine import PolicyEngine
from fraudrisk.policy.loader import load_default_policy, load_policy_text
from fraudrisk.scoring.decisions import reason_codes
from fraudrisk.scoring.model import LoadedModel, ModelCard
from fraudrisk.vocab import APPROVE, DECLINE, REVIEW

START, END = dt.date(2018, 4, 1), dt.date(2018, 4, 10)
RATIO = "customer_id_amount_ratio_30day_window"
TERMINAL = "terminal_id_risk_7day_window"
VELOCITY = "customer_id_nb_tx_1hour_window"
REASON_FEATURES = (RATIO, TERMINAL, VELOCITY, "tx_amount")
POINTS = 24


def policy(review: float, decline: float, missed: str = "amount", budget: int = 12) -> str:
    return f"""
name: cand
thresholds: {{review: {review}, decline: {decline}}}
alert_budget: {budget}
costs: {{review: 4.0, false_decline: 25.0, missed_fraud: {missed}}}
rules:
  - {{name: tiny, when: 'amount < 2 and risk < 0.6', action: allow, reason: tiny}}
  - name: night-large
    when: amount >= 300 and hour(tx_datetime) <= 5 and risk >= 0.1
    action: decline
    reason: night
  - {{name: terminal, when: '{TERMINAL} >= 0.5', action: force_review, reason: terminal}}
  - name: blamed
    when: "'{RATIO}' in reasons and {RATIO} >= 3"
    action: force_review
    reason: blamed spike
  - {{name: ecom, when: "channel == 'ecom' and amount >= 150", action: route, queue: q, reason: e}}
  - {{name: fast, when: '{VELOCITY} >= 4', action: raise_priority, factor: 3, reason: fast}}
  - {{name: never, when: 'amount < 0', action: decline, reason: never}}
"""


@pytest.fixture(scope="module")
def rows() -> dict[str, Any]:
    """A small window: risk, labels, amounts, fields, features, per-row reason sets."""
    rng = np.random.default_rng(7)
    n = 1500
    fraud = rng.random(n) < 0.08
    risk = np.clip(rng.beta(0.5, 6, n) + fraud * rng.uniform(0, 0.6, n), 0, 0.999)
    seconds = rng.integers(0, 10 * 86_400, n).astype("timedelta64[s]")
    reasons = [
        {f for f in REASON_FEATURES if rng.random() < 0.35} for _ in range(n)
    ]  # what the model would explain, if asked
    return {
        "risk": risk,
        "fraud": fraud,
        "tx_amount": np.round(rng.lognormal(3.5, 1.3, n), 2),
        "tx_datetime": np.datetime64("2018-04-01T00:00:00", "us") + seconds,
        "channel": rng.choice(np.array(["ecom", "pos", ""]), n),
        TERMINAL: rng.beta(0.6, 3, n).astype(np.float32),
        RATIO: rng.gamma(1.5, 1.5, n).astype(np.float32),
        VELOCITY: rng.integers(0, 7, n).astype(np.float32),
        "reasons": reasons,
    }


def make_window(rows: dict[str, Any], explained_from: float) -> Window:
    risk = rows["risk"]
    masks = {
        f: np.array([f in r for r in rows["reasons"]], dtype=bool) & (risk >= explained_from)
        for f in REASON_FEATURES
    }
    columns = {k: v for k, v in rows.items() if k not in ("risk", "fraud", "reasons")}
    return Window(
        risk, rows["fraud"], rows["tx_amount"], columns, masks, explained_from, START, END, END
    )


# ------------------------------------------------------------------------------ brute force


def decide_rows(checked: CheckedPolicy, rows: dict[str, Any], reasons_from: float) -> list:
    """decide_one on every row; reasons only for rows with risk >= ``reasons_from``."""
    engine = PolicyEngine(checked)
    out = []
    for i in range(len(rows["risk"])):
        risk = float(rows["risk"][i])
        tx = {k: rows[k][i] for k in ("tx_amount", "tx_datetime", "channel")}
        features = {k: float(rows[k][i]) for k in (TERMINAL, RATIO, VELOCITY)}
        seen = rows["reasons"][i] if risk >= reasons_from else set()
        out.append(engine.decide_one(risk, tx, features, sorted(seen)))
    return out


def brute_figures(decisions: list[str], rows: dict[str, Any], costs: Costs) -> dict[str, Any]:
    days = (END - START).days + 1
    return counted_figures(decisions, rows["fraud"], rows["tx_amount"], costs, days)


def counted_figures(
    decisions: Sequence[str],
    labels: Iterable[Any],
    amounts: Iterable[Any],
    costs: Costs,
    days: int,
) -> dict[str, Any]:
    """The figures of a backtest counted in a loop over the rows (labels 0/1 or bools)."""
    counts = Counter(decisions)
    alerts = fraud_alerts = frauds = 0
    caught = false_declines = missed = 0.0
    for decision, fraud, amount in zip(decisions, labels, amounts, strict=True):
        frauds += bool(fraud)
        if decision != APPROVE:
            alerts += 1
            fraud_alerts += bool(fraud)
            caught += amount if fraud else 0.0
        if decision == DECLINE and not fraud:
            false_declines += 1
        if decision == APPROVE and fraud:
            missed += amount if costs.missed_fraud == "amount" else float(costs.missed_fraud)
    review_cost = costs.review * counts[REVIEW]
    decline_cost = costs.false_decline * false_declines
    return {
        "approved": counts[APPROVE],
        "reviewed": counts[REVIEW],
        "declined": counts[DECLINE],
        "alerts_per_day": alerts / days,
        "reviews_per_day": counts[REVIEW] / days,
        "precision": fraud_alerts / alerts if alerts else None,
        "recall": fraud_alerts / frauds if frauds else None,
        "fraud_amount_caught": caught,
        "review_cost": review_cost,
        "false_decline_cost": decline_cost,
        "missed_fraud_cost": missed,
        "total_cost": review_cost + decline_cost + missed,
    }


def assert_figures(found: Any, expected: dict[str, Any]) -> None:
    data = found.model_dump()
    assert data.keys() == expected.keys()
    for key, value in expected.items():
        assert data[key] == (None if value is None else pytest.approx(value, rel=1e-9, abs=1e-6)), (
            key
        )


def moved(checked: CheckedPolicy, **thresholds: float) -> CheckedPolicy:
    document = checked.document
    new = document.thresholds.model_copy(update=thresholds)
    return check_document(document.model_copy(update={"thresholds": new}), checked.environment)


# ------------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module", params=["amount", "80"])
def case(request, rows):
    candidate = load_policy_text(policy(0.08, 0.7, missed=request.param))
    active = load_policy_text(policy(0.15, 0.6))
    window = make_window(rows, explained_from=0.08)
    return candidate, active, window, backtest(window, candidate, active, points=POINTS)


def test_candidate_and_active_figures_equal_brute_force(case, rows):
    candidate, active, _, result = case
    costs = candidate.document.costs
    mine = [d.decision for d in decide_rows(candidate, rows, 0.08)]
    theirs = [d.decision for d in decide_rows(active, rows, 0.15)]
    assert_figures(result.candidate.figures, brute_figures(mine, rows, costs))
    assert_figures(result.active.figures, brute_figures(theirs, rows, costs))  # candidate costs
    expected_change = {
        k: (None if v is None or w is None else v - w)
        for (k, v), w in zip(
            brute_figures(mine, rows, costs).items(),
            brute_figures(theirs, rows, costs).values(),
            strict=True,
        )
    }
    for key, value in expected_change.items():
        assert result.change[key] == (None if value is None else pytest.approx(value, abs=1e-6))
    assert result.transactions == len(rows["risk"]) and result.days == 10
    assert result.frauds == int(rows["fraud"].sum())
    assert result.fraud_amount == pytest.approx(float(rows["tx_amount"][rows["fraud"]].sum()))


def test_rule_figures_equal_brute_force(case, rows):
    candidate, _, _, result = case
    decided = decide_rows(candidate, rows, 0.08)
    n, frauds = len(decided), int(rows["fraud"].sum())
    names = [r.name for r in candidate.rules]
    assert [r.name for r in result.rules] == names
    for figures in result.rules:
        hit = [figures.name in d.fired for d in decided]
        hits = sum(hit)
        hit_frauds = sum(h and f for h, f in zip(hit, rows["fraud"], strict=True))
        amount = sum(
            a for h, f, a in zip(hit, rows["fraud"], rows["tx_amount"], strict=True) if h and f
        )
        shared = sum(h and len(d.fired) >= 2 for h, d in zip(hit, decided, strict=True))
        assert figures.hits == hits and figures.frauds == hit_frauds
        assert figures.hit_rate == pytest.approx(hits / n)
        assert figures.precision == (pytest.approx(hit_frauds / hits) if hits else None)
        assert figures.recall == pytest.approx(hit_frauds / frauds)
        assert figures.false_positive_rate == pytest.approx((hits - hit_frauds) / (n - frauds))
        assert figures.fraud_amount == pytest.approx(amount)
        assert figures.decided == sum(d.decided_by == figures.name for d in decided)
        assert figures.overlap_share == (pytest.approx(shared / hits) if hits else None)
        for other, count in figures.overlap.items():
            assert count == sum(figures.name in d.fired and other in d.fired for d in decided)
        assert set(figures.overlap) == set(names) - {figures.name}
    never = next(r for r in result.rules if r.name == "never")
    assert never.hits == 0 and never.precision is None and never.overlap_share is None
    blamed = next(r for r in result.rules if r.name == "blamed")
    assert blamed.hits > 0  # the reasons rule fires, on flagged rows only


@pytest.mark.parametrize("which", ["review", "decline"])
def test_every_sweep_point_equals_brute_force(case, rows, which):
    candidate, _, _, result = case
    sweep = result.review_sweep if which == "review" else result.decline_sweep
    review, decline = candidate.document.thresholds.review, candidate.document.thresholds.decline
    lower, upper = (0.0, decline) if which == "review" else (review, 1.0)
    grid = threshold_grid(sweep.current, lower, upper, POINTS)
    assert [p.threshold for p in sweep.points] == grid.tolist()
    assert all(lower < p.threshold < upper for p in sweep.points)
    for point in sweep.points:
        policy_at = moved(candidate, **{which: point.threshold})
        # The sweep holds the rules' hits as the candidate's thresholds make them: reasons
        # for the rows the candidate's review threshold flags (module docstring).
        decisions = [d.decision for d in decide_rows(policy_at, rows, review)]
        assert_figures(point.figures, brute_figures(decisions, rows, candidate.document.costs))
    current = next(p for p in sweep.points if p.threshold == sweep.current)
    assert_figures(current.figures, result.candidate.figures.model_dump())
    assert sweep.cost_optimal == nearest_of_least_cost(sweep.points, sweep.current)
    within = [p for p in sweep.points if p.figures.reviews_per_day <= 12]
    if within:
        assert sweep.budget_optimal == nearest_of_least_cost(within, sweep.current)
        assert sweep.budget_optimal.figures.reviews_per_day <= 12
    else:
        assert sweep.budget_optimal is None


def nearest_of_least_cost(points, current):
    """Brute force: the points of least cost, then the one nearest ``current``."""
    least = min(p.figures.total_cost for p in points)
    tied = [p for p in points if p.figures.total_cost == least]
    return sorted(tied, key=lambda p: abs(p.threshold - current))[0]


def test_of_equal_costs_the_current_threshold_is_kept():
    from fraudrisk.policy.backtest_results import Figures, ThresholdPoint
    from fraudrisk.policy.backtest_sweeps import least_cost

    def point(threshold, cost):
        zero = dict.fromkeys(Figures.model_fields, 0)
        return ThresholdPoint(threshold=threshold, figures=Figures(**{**zero, "total_cost": cost}))

    points = [point(0.01, 9.0), point(0.02, 5.0), point(0.03, 5.0), point(0.045, 5.0)]
    assert least_cost(points, 0.045).threshold == 0.045
    assert least_cost(points, 0.021).threshold == 0.02
    assert least_cost([point(0.01, 4.0), *points], 0.045).threshold == 0.01


def test_reasons_are_those_of_the_rows_a_policys_thresholds_flag(rows):
    candidate = load_policy_text(policy(0.08, 0.7))
    window = make_window(rows, explained_from=0.08)
    batch = window.batch_for(load_policy_text(policy(0.3, 0.7)))
    mask = batch.reasons[RATIO]
    expected = [RATIO in r and k >= 0.3 for r, k in zip(rows["reasons"], rows["risk"], strict=True)]
    assert mask.tolist() == expected
    with pytest.raises(ValueError, match=r"reasons computed from risk 0\.08"):
        window.batch_for(load_policy_text(policy(0.05, 0.7)))
    assert make_window(rows, 0.045).batch_for(load_default_policy()).reasons is not None
    unused = load_policy_text(
        "name: plain\nthresholds: {review: 0.1, decline: 0.5}\nalert_budget: 1\n"
    )
    assert window.batch_for(unused).reasons is None and candidate.reads_reasons


def test_json_is_stable_and_round_trips(case):
    result = case[3]
    data = json.loads(result.model_dump_json())
    assert data["schema_version"] == 1
    assert set(data) >= {"candidate", "active", "change", "rules", "review_sweep", "decline_sweep"}
    assert type(result).model_validate(data) == result


def test_an_empty_window_is_a_clear_error(rows):
    empty = {k: (v[:0] if k != "reasons" else []) for k, v in rows.items()}
    candidate = load_policy_text(policy(0.08, 0.7))
    with pytest.raises(ValueError, match=r"no labelled transaction in 2018-04-01\.\.2018-04-10"):
        backtest(make_window(empty, 0.08), candidate)


def test_overlap_counts_by_blocks_equal_a_loop(monkeypatch):
    fired = np.random.default_rng(3).random((1000, 4)) < 0.3
    monkeypatch.setattr(backtest_module, "OVERLAP_BLOCK", 97)
    found = overlap_counts(fired)
    for i in range(4):
        for j in range(4):
            assert found[i, j] == sum(
                a and b for a, b in zip(fired[:, i], fired[:, j], strict=True)
            )


def test_reason_masks_are_the_scorers_reason_codes():
    rng = np.random.default_rng(5)
    names = tuple(REASON_FEATURES)
    matrix = rng.random((300, len(names))).astype(np.float32)
    shap = rng.normal(0, 1, (300, len(names) + 1))
    card = ModelCard("m", "1", "models:/m/1", names, "fs", None)
    model = LoadedModel(card, lambda m: np.zeros(len(m)), lambda m: shap[rows_of(m, matrix)], "x")
    rows = np.flatnonzero(rng.random(300) < 0.4)
    masks = reason_masks(model, matrix, rows, top=2)
    texts = reason_codes(shap[rows], matrix[rows], names, 2)
    for i in range(300):
        expected = set()
        if i in set(rows.tolist()):
            expected = {entry["feature"] for entry in json.loads(texts[rows.tolist().index(i)])}
        assert {n for n in names if masks[n][i]} == expected


def rows_of(part: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The indices of ``part``'s rows in ``matrix`` (the fake model's SHAP lookup)."""
    return np.array([int(np.flatnonzero((matrix == r).all(axis=1))[0]) for r in part])
