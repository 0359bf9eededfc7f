"""The live policy: applied as the engine decides, swapped on activation, a broken version never
applied, the version recorded on every decision, reasons for the alerts rules make."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from tests.unit.scoring.served import Served

from fraudrisk.config import ServingSettings
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.io.database import create_engine
from fraudrisk.policy.engine import PolicyEngine
from fraudrisk.policy.inputs import PolicyBatch
from fraudrisk.policy.live import LivePolicy, StoredVersions
from fraudrisk.policy.live_version import AppliedVersion, policy_metrics
from fraudrisk.policy.loader import load_policy_text
from fraudrisk.policy.versions import digest_of
from fraudrisk.scoring.decisions import PolicyInputs
from fraudrisk.scoring.model import load_model
from fraudrisk.scoring.scorer import RowScores, Scorer
from fraudrisk.scoring.vectors import TransactionBatch

EPOCH = dt.date(2018, 4, 1)
RULES = """name: live
thresholds: {review: 0.3, decline: 0.9}
alert_budget: 100
rules:
  - {name: tiny, when: amount < 2 and risk < 0.5, action: allow, reason: tiny amount}
  - {name: web-big, when: channel == 'ecom' and amount >= 300, action: decline, reason: web}
  - {name: night, when: 'hour(tx_datetime) <= 5 and amount > 80', action: force_review,
     reason: night}
  - {name: busy, when: customer_id_nb_tx_1day_window >= 3, action: route, queue: high-value,
     reason: busy}
  - name: blamed
    when: >-
      'tx_amount' in reasons and amount > 50
    action: raise_priority
    factor: 3
    reason: amount blamed
"""
THRESHOLDS_ONLY = "name: plain\nthresholds: {review: 0.2, decline: 0.95}\nalert_budget: 10\n"
BROKEN = RULES.replace("amount < 2", "amount <")


class Source:
    """Versions in memory: ``texts`` by number, ``active`` the active one."""

    def __init__(self, **texts: str) -> None:
        self.texts = {int(k.removeprefix("v")): t for k, t in texts.items()}
        self.active: int | None = None
        self.polls = 0

    def head(self) -> tuple[int, str] | None:
        self.polls += 1
        if self.active is None:
            return None
        return self.active, digest_of(self.texts[self.active])

    def text(self, number: int) -> str:
        return self.texts[number]


def inputs(n: int, seed: int = 0) -> PolicyInputs:
    """A random scored batch (risk, features, reasons) of ``n`` transactions."""
    rng = np.random.default_rng(seed)
    start = int(dt.datetime(2018, 6, 1, tzinfo=dt.UTC).timestamp())
    batch = TransactionBatch(
        transaction_id=np.arange(n, dtype=np.int64),
        seconds=start + rng.integers(0, 86_400 * 3, n).astype(np.int64),
        customer_id=rng.integers(0, 50, n).astype(np.int64),
        terminal_id=rng.integers(0, 50, n).astype(np.int64),
        tx_amount=np.round(rng.lognormal(3.5, 1.4, n), 2),
    )
    matrix = rng.gamma(1.0, 2.0, (n, len(FEATURE_NAMES))).astype(np.float32)
    risk = rng.beta(0.6, 3, n)
    picks = rng.integers(0, 4, n)
    reasons = [
        json.dumps([{"feature": "tx_amount", "value": 1, "contribution": 0.1}]) if p == 0 else "[]"
        for p in picks.tolist()
    ]
    fields = {"channel": rng.choice(["ecom", "pos", None], n).tolist()}
    base = np.where(risk >= 0.9, "decline", np.where(risk >= 0.3, "review", "approve"))
    return PolicyInputs(batch, fields, matrix, FEATURE_NAMES, risk, reasons, base)


def expected(text: str, given: PolicyInputs) -> tuple[list[str], list[object], list[float]]:
    """The engine's own decisions, routes and factors on the same batch."""
    b = given.batch
    stamps = b.seconds.astype("datetime64[s]")
    columns = {"tx_amount": b.tx_amount, "tx_datetime": stamps, **given.fields}
    batch = PolicyBatch.from_matrix(given.risk, columns, given.matrix, given.names, given.reasons)
    d = PolicyEngine(load_policy_text(text)).decide_batch(batch)
    return d.decision.tolist(), d.route.tolist(), d.priority_factor.tolist()


@pytest.mark.parametrize("n", [1, 2, 500])
def test_apply_equals_the_engine_on_the_same_batch(n: int) -> None:
    given = inputs(n, seed=n)
    outcome = AppliedVersion.of_text(RULES, 4, digest_of(RULES), EPOCH).apply(given)
    decisions, routes, factors = expected(RULES, given)
    assert outcome.decision.tolist() == decisions
    assert outcome.route == routes and outcome.priority_factor.tolist() == factors
    assert outcome.version == 4
    if n == 500:  # every kind of rule fired somewhere, and the rows name what fired
        fired = {r["rule"] for text in outcome.rules for r in json.loads(text)}
        assert fired == {"tiny", "web-big", "night", "busy", "blamed"}
        assert set(decisions) == {"approve", "review", "decline"}


EVERY_COLUMN = """name: every
thresholds: {review: 0.3, decline: 0.9}
alert_budget: 100
rules:
  - {name: tiny, when: amount < 2 and risk < 0.5, action: allow, reason: tiny}
  - {name: web, when: channel == 'ecom' and amount >= 200, action: decline, reason: web}
  - {name: abroad, when: "country not in ['FR'] and amount > 120", action: force_review,
     reason: abroad}
  - {name: late, when: 'hour(tx_datetime) <= 5 or weekday(tx_datetime) == 6', action: route,
     queue: night, reason: late}
  - {name: early, when: tx_time_days < 62 and tx_time_seconds > 0, action: raise_priority,
     factor: 2, reason: early}
  - {name: ids, when: customer_id < 3 or terminal_id == 7 or transaction_id == 3,
     action: force_review, reason: ids}
  - {name: busy, when: customer_id_nb_tx_1day_window >= 3, action: route, queue: high-value,
     reason: busy}
  - {name: unseen, when: not (terminal_id_risk_30day_window >= 0), action: raise_priority,
     factor: 4, reason: a feature the matrix lacks reads as NaN}
  - name: blamed
    when: >-
      'tx_amount' in reasons and amount > 50
    action: raise_priority
    factor: 3
    reason: amount blamed
  - {name: no-card, when: card_token == '', action: route, queue: general, reason: no card}
"""


def row_of(given: PolicyInputs, i: int) -> PolicyInputs:
    """Row ``i`` of ``given`` as a batch of one (what the sync API and KServe score)."""
    return PolicyInputs(
        given.batch.take(np.array([i])),
        {name: [values[i]] for name, values in given.fields.items()},
        given.matrix[i : i + 1],
        given.names,
        given.risk[i : i + 1],
        [given.reasons[i]],
        given.threshold_decision[i : i + 1],
    )


def richer(n: int, seed: int) -> PolicyInputs:
    """:func:`inputs` with a ``country`` field (some missing) and a feature left out."""
    given = inputs(n, seed)
    country = np.random.default_rng(seed).choice(["FR", "DE", None], n).tolist()
    keep = [j for j, name in enumerate(given.names) if name != "terminal_id_risk_30day_window"]
    return replace(
        given,
        fields={**given.fields, "country": country},
        matrix=given.matrix[:, keep],
        names=tuple(given.names[j] for j in keep),
    )


@pytest.mark.parametrize("text", [RULES, EVERY_COLUMN, THRESHOLDS_ONLY])
def test_one_transaction_at_a_time_is_decided_as_in_a_batch(text: str) -> None:
    registry = CollectorRegistry()
    applied = AppliedVersion(load_policy_text(text), 5, "d", EPOCH, policy_metrics(registry))
    given = richer(600, seed=3)
    batch = applied.apply(given)  # the vectorised evaluator
    ones = [applied.apply(row_of(given, i)) for i in range(600)]  # the scalar evaluator's path
    assert [o.decision.tolist()[0] for o in ones] == batch.decision.tolist()
    assert [o.route[0] for o in ones] == batch.route
    assert [o.priority_factor.tolist()[0] for o in ones] == batch.priority_factor.tolist()
    assert [o.rules[0] for o in ones] == batch.rules
    assert {o.version for o in ones} == {batch.version} == {5}
    assert registry.get_sample_value("fraudrisk_policy_errors_total", {"policy_version": "5"}) in (
        None,
        0,
    )  # neither path failed (a failure would leave both the thresholds' decisions)
    fired = {r["rule"] for text in batch.rules for r in json.loads(text)}
    assert fired == {r.name for r in applied.rules}  # every rule fired somewhere


def test_the_fields_given_may_change_from_one_call_to_the_next() -> None:
    applied = AppliedVersion.of_text(EVERY_COLUMN, 1, "d", EPOCH)
    given = richer(300, seed=8)
    bare = replace(given, fields={})  # no channel, no country: both read as ""
    only_channel = replace(given, fields={"channel": given.fields["channel"]})
    for version in (given, bare, only_channel, given):
        whole = applied.apply(version)
        ones = [applied.apply(row_of(version, i)) for i in range(300)]
        assert [o.decision.tolist()[0] for o in ones] == whole.decision.tolist()
        assert [o.rules[0] for o in ones] == whole.rules
    assert applied.apply(bare).decision.tolist() != applied.apply(given).decision.tolist()


def test_a_rule_failure_leaves_the_thresholds_decision_and_is_counted() -> None:
    registry = CollectorRegistry()
    applied = AppliedVersion(load_policy_text(RULES), 2, "d", EPOCH, policy_metrics(registry))
    given = inputs(20)
    broken = PolicyInputs(given.batch, {"channel": [1] * 3}, *list(vars(given).values())[2:])
    outcome = applied.apply(broken)  # a field column of the wrong length
    assert outcome.decision.tolist() == given.threshold_decision.tolist()
    assert registry.get_sample_value("fraudrisk_policy_errors_total", {"policy_version": "2"}) == 1


def test_reload_swaps_on_activation_and_a_broken_version_is_never_applied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = Source(v1=THRESHOLDS_ONLY, v2=BROKEN, v3=RULES)
    registry = CollectorRegistry()
    live = LivePolicy(source, EPOCH, metrics=policy_metrics(registry))
    assert not live.refresh() and live.current() is None  # no active version: model thresholds
    source.active = 1
    assert live.refresh() and live.version == 1
    assert live.current() is not None and live.current().thresholds == (0.2, 0.95)  # type: ignore[union-attr]
    assert not live.refresh()  # unchanged: nothing reloaded
    source.active = 2
    with caplog.at_level(logging.ERROR):
        assert not live.refresh() and not live.refresh()
    assert live.version == 1  # the broken one never decides
    errors = [r for r in caplog.records if "NOT applied" in r.getMessage()]
    assert len(errors) == 1 and "v2" in errors[0].getMessage()
    failures = {"policy_version": "2"}
    assert registry.get_sample_value("fraudrisk_policy_reload_failures_total", failures) == 1
    source.active = 3
    assert live.refresh() and live.version == 3
    assert registry.get_sample_value("fraudrisk_policy_active_version") == 3


def test_a_database_that_fails_keeps_the_loaded_version() -> None:
    source = Source(v1=RULES)
    source.active = 1
    live = LivePolicy(source, EPOCH, metrics=policy_metrics(CollectorRegistry()))
    live.refresh()

    def down() -> None:
        raise OSError("connection refused")

    source.head = down  # type: ignore[assignment,method-assign]
    assert not live.refresh() and live.version == 1


def test_the_reload_thread_picks_up_an_activation() -> None:
    source = Source(v1=THRESHOLDS_ONLY, v2=RULES)
    source.active = 1
    live = LivePolicy(
        source, EPOCH, reload_seconds=0.02, metrics=policy_metrics(CollectorRegistry())
    )
    live.refresh()
    live.start()
    try:
        source.active = 2
        deadline = dt.datetime.now() + dt.timedelta(seconds=5)
        while live.version != 2 and dt.datetime.now() < deadline:
            pass
        assert live.version == 2
    finally:
        live.stop()


def test_stored_versions_without_the_table_have_no_active_version(tmp_path: Path) -> None:
    versions = StoredVersions(create_engine(f"sqlite:///{tmp_path / 'alerts.db'}"))
    assert versions.head() is None


# ------------------------------------------------------------------------------ in the scorer
def scorer(served: Served, live: LivePolicy | None) -> Scorer:
    model = load_model(served.settings, "models:/fraud-risk@champion")
    serving = ServingSettings(reason_codes_for="flagged")
    return Scorer(model, served.states, serving, variant="champion", policy=live)


def test_the_scorer_applies_the_active_version_and_records_it(served: Served) -> None:
    source = Source(v7=RULES)
    source.active = 7
    live = LivePolicy(source, EPOCH, metrics=policy_metrics(CollectorRegistry()))
    live.refresh()
    plain = scorer(served, None).score(served.batch)
    scored = scorer(served, live).score(served.batch)
    np.testing.assert_array_equal(scored.risk_score, plain.risk_score)  # the same model
    assert scored.policy_version == 7 and plain.policy_version is None
    b = served.batch
    risk = scored.risk_score
    base = np.where(risk >= 0.9, "decline", np.where(risk >= 0.3, "review", "approve"))
    features = scorer(served, None).features(b)
    missing = {"channel": [None] * len(b)}  # the batch alone has no channel: it reads as ""
    given = PolicyInputs(b, missing, features, FEATURE_NAMES, risk, scored.reason_codes, base)
    decisions, routes, factors = expected(RULES, given)
    assert scored.decision.tolist() == decisions
    assert scored.route == routes and scored.priority_factor == factors
    # every alert has its reasons, those a rule made included; approvals by threshold have none
    alerts = scored.decision != "approve"
    assert all(json.loads(scored.reason_codes[i]) for i in np.flatnonzero(alerts))
    made_by_rules = alerts & (base == "approve")
    assert made_by_rules.any()
    rows = RowScores.merge(len(b), [(np.arange(len(b)), scored)])
    assert set(rows.policy_version or []) == {7}


def test_no_active_version_scores_exactly_as_before(served: Served) -> None:
    live = LivePolicy(Source(), EPOCH, metrics=policy_metrics(CollectorRegistry()))
    live.refresh()
    plain = scorer(served, None).score(served.batch)
    scored = scorer(served, live).score(served.batch)
    assert scored.decision.tolist() == plain.decision.tolist()
    assert scored.reason_codes == plain.reason_codes and scored.policy_version is None
