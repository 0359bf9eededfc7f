"""Routing: the first matching rule wins, the default queue otherwise; bad files are named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fraudrisk.cases.routing import (
    CaseFacts,
    Conditions,
    RoutingError,
    RoutingRules,
    load_rules,
    route,
)

QUEUES = [
    {"name": "a", "sla_minutes": 10},
    {"name": "b", "sla_minutes": 20},
    {"name": "fallback", "sla_minutes": 30},
]


def rules(*rule_list: dict[str, Any]) -> RoutingRules:
    return RoutingRules.model_validate(
        {"version": 3, "default_queue": "fallback", "queues": QUEUES, "rules": list(rule_list)}
    )


def facts(**changes: Any) -> CaseFacts:
    values: dict[str, Any] = {
        "decision": "review",
        "amount": 100.0,
        "risk": 0.5,
        "reason_features": ["amount_z"],
        "variant": "champion",
        "channel": "web",
        "country": "FR",
    }
    return CaseFacts(**(values | changes))


def test_the_first_matching_rule_wins() -> None:
    chosen = rules(
        {"name": "first", "queue": "a", "when": {"decision": ["review"]}},
        {"name": "second", "queue": "b", "when": {"decision": ["review"]}},
    )
    assert route(chosen, facts()) == ("a", "first")
    reordered = rules(
        {"name": "second", "queue": "b", "when": {"decision": ["review"]}},
        {"name": "first", "queue": "a", "when": {"decision": ["review"]}},
    )
    assert route(reordered, facts()) == ("b", "second")


def test_no_matching_rule_routes_to_the_default_queue() -> None:
    chosen = rules({"name": "declines", "queue": "a", "when": {"decision": ["decline"]}})
    assert route(chosen, facts()) == ("fallback", "default")
    assert route(rules(), facts()) == ("fallback", "default")


def test_a_rule_without_conditions_matches_everything() -> None:
    assert route(rules({"name": "all", "queue": "b"}), facts()) == ("b", "all")


#: condition → (facts that match it, facts that do not)
CONDITIONS: dict[str, tuple[Any, dict[str, Any], dict[str, Any]]] = {
    "decision": (["decline"], {"decision": "decline"}, {"decision": "review"}),
    "amount_gte": (250, {"amount": 250.0}, {"amount": 249.99}),
    "amount_lt": (250, {"amount": 249.99}, {"amount": 250.0}),
    "risk_gte": (0.8, {"risk": 0.8}, {"risk": 0.79}),
    "risk_lt": (0.8, {"risk": 0.79}, {"risk": 0.8}),
    "reason_code": (
        ["terminal_risk_7d", "amount_z"],
        {"reason_features": ["x", "terminal_risk_7d"]},
        {"reason_features": ["x", "y"]},
    ),
    "variant": (["challenger"], {"variant": "challenger"}, {"variant": "champion"}),
    "channel": (["pos", "atm"], {"channel": "atm"}, {"channel": None}),
    "country": (["DE"], {"country": "DE"}, {"country": "FR"}),
}


def test_every_condition_of_the_rule_file_is_covered() -> None:
    assert set(CONDITIONS) == set(Conditions.model_fields)


@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_each_condition_type_matches_and_misses(condition: str) -> None:
    value, matching, missing = CONDITIONS[condition]
    chosen = rules({"name": f"by-{condition}", "queue": "a", "when": {condition: value}})
    assert route(chosen, facts(**matching)) == ("a", f"by-{condition}")
    assert route(chosen, facts(**missing)) == ("fallback", "default")


def test_all_conditions_of_a_rule_must_hold() -> None:
    chosen = rules(
        {"name": "big-decline", "queue": "a", "when": {"decision": ["decline"], "amount_gte": 500}},
        {"name": "declined", "queue": "b", "when": {"decision": ["decline"]}},
    )
    assert route(chosen, facts(decision="decline", amount=600)) == ("a", "big-decline")
    assert route(chosen, facts(decision="decline", amount=100)) == ("b", "declined")
    assert route(chosen, facts(decision="review", amount=600)) == ("fallback", "default")


def test_the_bundled_routing_file_loads_and_routes() -> None:
    bundled = load_rules()
    assert bundled.version >= 1
    names = {q.name for q in bundled.queues}
    assert {"general", "high-value", "declines", "missed-fraud"} <= names
    assert bundled.default_queue == "general"
    assert route(bundled, facts(amount=1000, decision="decline")) == ("high-value", "large-amount")
    assert route(bundled, facts(amount=10, decision="decline")) == ("declines", "declined")
    assert route(bundled, facts(amount=10)) == ("general", "default")


def write(tmp_path: Path, content: Any, name: str = "routing.yaml") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def valid() -> dict[str, Any]:
    return {
        "version": 2,
        "default_queue": "fallback",
        "queues": [dict(q) for q in QUEUES],
        "rules": [{"name": "big", "queue": "a", "when": {"amount_gte": 100}}],
    }


def test_a_valid_file_of_ones_own_loads(tmp_path: Path) -> None:
    loaded = load_rules(write(tmp_path, valid()))
    assert loaded.version == 2 and [r.name for r in loaded.rules] == ["big"]
    assert load_rules(str(write(tmp_path, valid(), "as-text.yaml"))).version == 2


def broken(change: str) -> dict[str, Any]:
    content = valid()
    if change == "rule-to-unknown-queue":
        content["rules"][0]["queue"] = "nowhere"
    elif change == "default-to-unknown-queue":
        content["default_queue"] = "nowhere"
    elif change == "unknown-top-level-key":
        content["owner"] = "me"
    elif change == "unknown-condition":
        content["rules"][0]["when"]["amount_above"] = 3
    elif change == "risk-out-of-range":
        content["rules"][0]["when"] = {"risk_gte": 1.5}
    elif change == "bad-queue-name":
        content["queues"][0]["name"] = "Bad Name"
    elif change == "no-version":
        del content["version"]
    return content


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("rule-to-unknown-queue", "rule 'big' routes to 'nowhere', which is not among the queues"),
        ("default-to-unknown-queue", "default_queue routes to 'nowhere'"),
        ("unknown-top-level-key", "owner: Extra inputs are not permitted"),
        ("unknown-condition", "rules.0.when.amount_above: Extra inputs are not permitted"),
        ("risk-out-of-range", "rules.0.when.risk_gte: Input should be less than or equal to 1"),
        ("bad-queue-name", "queues.0.name: String should match pattern"),
        ("no-version", "version: Field required"),
    ],
)
def test_an_invalid_file_names_the_file_and_the_problem(
    tmp_path: Path, change: str, problem: str
) -> None:
    path = write(tmp_path, broken(change))
    with pytest.raises(RoutingError) as refused:
        load_rules(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: "), message
    assert problem in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("version: 1\nqueues: [unclosed\n", "not YAML"),
        ("version: [1\n  - 2", "not YAML"),
        ("", "Input should be a valid dictionary"),
        ("- just\n- a list\n", "Input should be a valid dictionary"),
    ],
)
def test_a_file_that_is_not_a_routing_mapping_is_named(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RoutingError, match=problem) as refused:
        load_rules(path)
    assert str(refused.value).startswith(f"{path}: ")
