"""Reading policies from YAML: every problem at its file:line:col, several at once."""

from __future__ import annotations

import textwrap

import pytest

from fraudrisk.policy.document import (
    Costs,
    DecisionThresholds,
    PolicyDocument,
    RuleSpec,
    check_document,
)
from fraudrisk.policy.errors import PolicyError
from fraudrisk.policy.loader import lint, lint_text, load_policy, load_policy_text
from fraudrisk.policy.syntax import Comparison
from fraudrisk.policy.types import Environment

HEAD = """\
name: test
thresholds:
  review: 0.1
  decline: 0.9
alert_budget: 50
"""
QUEUES = Environment.standard(queues=["high-value", "general"])


def problems(text: str, environment: Environment = QUEUES) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(textwrap.dedent(text), "p.yaml", environment)
    return [str(p) for p in caught.value.problems]


def rule(when: str, extra: str = "", action: str = "decline") -> str:
    return (
        HEAD
        + f"rules:\n  - name: r\n    when: {when}\n    action: {action}\n{extra}    reason: x\n"
    )


def test_a_clean_policy_loads_with_its_rules_parsed():
    text = HEAD + textwrap.dedent(
        """\
        costs: {review: 3, false_decline: 30}
        rules:
          - name: big
            when: amount > 1000
            action: route
            queue: high-value
            reason: Big
          - name: spike
            when: customer_id_amount_ratio_30day_window >= 5
            action: raise_priority
            factor: 3
            reason: Spike
        """
    )
    policy = load_policy_text(text, "p.yaml", QUEUES)
    assert [r.name for r in policy.rules] == ["big", "spike"]
    assert isinstance(policy.rules[0].condition, Comparison)
    assert policy.document.thresholds == DecisionThresholds(review=0.1, decline=0.9)
    assert policy.document.costs == Costs(review=3, false_decline=30)
    assert policy.columns == ("tx_amount", "customer_id_amount_ratio_30day_window")
    assert not policy.reads_reasons and policy.text == text and policy.source == "p.yaml"


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("tx_amout > 100", "p.yaml:8:11: unknown field 'tx_amout' (did you mean 'tx_amount'?)"),
        ("amount > 100 and channel == 5", "p.yaml:8:28: cannot compare a string with a number"),
        # quoted scalars: the column counts the quote, and '' / \\" escapes
        ("'amount > 1 and bogus'", "p.yaml:8:27: unknown field 'bogus'"),
        ("'channel == ''x'' and bogus'", "p.yaml:8:33: unknown field 'bogus'"),
        ('"channel == \\"x\\" and bogus"', "p.yaml:8:33: unknown field 'bogus'"),
        ("\"'zz' in reasons\"", "p.yaml:8:12: 'zz' is not a feature of the model"),
        ("amount >", "p.yaml:8:19: expected a value"),
        ("", "p.yaml:8:10: empty expression"),
        ("5", "p.yaml:8:11: a condition must be true or false, this is a number"),
    ],
)
def test_expression_problems_point_into_the_scalar(when, expected):
    (found,) = problems(rule(when))
    assert found.startswith(expected), found


def test_block_scalars_and_multi_line_plain_scalars_map_each_line():
    literal = HEAD + "rules:\n  - name: r\n    when: |\n      amount > 1\n      and bogus\n"
    literal += "    action: decline\n    reason: x\n"
    assert problems(literal) == ["p.yaml:10:11: unknown field 'bogus'"]
    folded = literal.replace("when: |", "when: >-")
    assert problems(folded) == ["p.yaml:10:11: unknown field 'bogus'"]
    plain = HEAD + "rules:\n  - name: r\n    when: amount > 1\n      and bogus > 2\n"
    plain += "    action: decline\n    reason: x\n"
    assert problems(plain) == ["p.yaml:9:11: unknown field 'bogus'"]


def test_schema_problems_point_at_the_key_or_value():
    text = """\
        name: Bad Name
        thresholds:
          review: 0.9
          decline: 0.5
        alert_budgt: 100
        extra: 1
        """
    assert problems(text) == [
        "p.yaml:1:1: missing 'alert_budget'",
        "p.yaml:1:7: name: use lower-case letters, digits, '-' and '_' (e.g. large-at-night)",
        "p.yaml:4:12: thresholds.decline: decline (0.5) must be above review (0.9)",
        "p.yaml:5:1: unknown key 'alert_budgt' (did you mean 'alert_budget'?)",
        "p.yaml:6:1: unknown key 'extra'",
    ]


@pytest.mark.parametrize(
    ("review", "decline", "message"),
    [
        ("0", "0.5", "3:11: thresholds.review: Input should be greater than 0"),
        ("0.2", "1", "4:12: thresholds.decline: Input should be less than 1"),
        ("0.5", "0.5", "4:12: thresholds.decline: decline (0.5) must be above review (0.5)"),
        ("high", "0.5", "3:11: thresholds.review: Input should be a valid number"),
    ],
)
def test_thresholds_are_ordered_in_the_open_unit_interval(review, decline, message):
    text = HEAD.replace("review: 0.1", f"review: {review}").replace(
        "decline: 0.9", f"decline: {decline}"
    )
    (found,) = problems(text)
    assert found.startswith(f"p.yaml:{message}"), found


@pytest.mark.parametrize(
    ("action", "extra", "expected"),
    [
        (
            "declin",
            "",
            "9:13: rule 'r': action: unknown action 'declin' (did you mean 'decline'?)",
        ),
        ("route", "", "9:13: rule 'r': action: a route rule needs 'queue: <queue name>'"),
        ("route", "    queue: high-valu\n", "10:12: rule 'r': queue: unknown queue 'high-valu'"),
        ("decline", "    queue: general\n", "10:12: rule 'r': queue: 'queue' is for route rules"),
        ("raise_priority", "", "9:13: rule 'r': action: a raise_priority rule needs 'factor"),
        ("raise_priority", "    factor: 1\n", "10:13: rule 'r': factor: Input should be greater"),
        ("allow", "    factor: 2\n", "10:13: rule 'r': factor: 'factor' is for raise_priority"),
        ("allow", "    priority: 2\n", "10:5: rule 'r': unknown key 'priority'"),
    ],
)
def test_action_arguments(action, extra, expected):
    text = HEAD + f"rules:\n  - name: r\n    when: amount > 1\n    action: {action}\n{extra}"
    text += "    reason: x\n"
    (found,) = problems(text)
    assert found.startswith(f"p.yaml:{expected}"), found


def test_queues_are_not_checked_without_a_queue_list():
    text = HEAD + "rules:\n  - {name: r, when: amount > 1, action: route, queue: any, reason: x}\n"
    assert load_policy_text(text).rules[0].spec.queue == "any"


def test_several_problems_of_several_kinds_at_once():
    text = HEAD + textwrap.dedent(
        """\
        rules:
          - name: one
            when: tx_amout > 1
            action: declin
            reason: x
          - name: one
            when: hour(tx_datetime, 2) < 6
            action: allow
          - name: three
            when: amount > 1
            action: force_review
            reason: ""
        """
    )
    assert problems(text) == [
        "p.yaml:8:11: unknown field 'tx_amout' (did you mean 'tx_amount'?)",
        "p.yaml:9:13: rule 'one': action: unknown action 'declin' (did you mean 'decline'?): "
        "one of allow, decline, force_review, route, raise_priority",
        "p.yaml:11:5: rule 'one': missing 'reason'",
        "p.yaml:11:11: rule name 'one' is used twice (first by rule 1)",
        "p.yaml:12:11: hour() takes 1 argument, got 2",
        "p.yaml:17:13: rule 'three': reason: String should have at least 1 character",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "p.yaml:1:1: empty file"),
        ("- a\n- b\n", "p.yaml:1:1: a policy is a mapping"),
        ("name: [unclosed\n", "p.yaml:2:1: not valid YAML"),
        ("name: a\nname: b\n", "p.yaml:2:1: duplicate key 'name'"),
        ("a: 1\n---\nb: 2\n", "p.yaml:2:1: not valid YAML: expected a single document"),
        ("name: !!python/object:os.system x\n", "p.yaml:1:7: not valid here"),
        ("name: a\n  b\x00c\n", "p.yaml:2:4: not valid YAML: special characters"),
        ("x: " + "[" * 5000 + "]" * 5000, "p.yaml:1:1: not valid here: the text is nested"),
    ],
)
def test_files_that_are_not_a_policy(text, expected):
    found = problems(text)
    assert any(f.startswith(expected) for f in found), found


def test_when_that_yaml_reads_as_a_list_says_how_to_quote_it():
    text = rule("[amount > 1]")
    (found,) = problems(text)
    assert found.startswith("p.yaml:8:11: rule 'r': when: must be an expression: quote it")


def test_yaml_booleans_and_numbers_in_when_are_read_as_text():
    text = rule("true")
    assert load_policy_text(text).rules[0].spec.when == "true"


def test_load_and_lint_files(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(rule("amount > 1"))
    bad.write_text(rule("amount >> 1"))
    assert load_policy(good).source == str(good)
    assert lint(good) == []
    (problem,) = lint(bad)
    assert (problem.source, problem.line, problem.column) == (str(bad), 8, 19)
    (missing,) = lint(tmp_path / "missing.yaml")
    assert "cannot read the file" in missing.message
    assert lint_text(good.read_text(), "v3") == []
    assert [str(p) for p in lint_text(bad.read_text(), "v3")] == [
        "v3:8:19: expected a value (a name, a number, 'text', true, false or '('), found '>'"
    ]


def test_a_document_built_in_code_is_checked_too():
    document = PolicyDocument(
        name="code",
        thresholds=DecisionThresholds(review=0.2, decline=0.8),
        alert_budget=10,
        rules=[
            RuleSpec(name="a", when="amount > 1", action="decline", reason="x"),
            RuleSpec(name="b", when="amount > 'x'", action="route", queue="nope", reason="y"),
        ],
    )
    with pytest.raises(PolicyError) as caught:
        check_document(document, QUEUES, "db:7")
    assert [str(p) for p in caught.value.problems] == [
        "db:7#rules[1].queue:1:1: unknown queue 'nope'",
        "db:7#rules[1].when:1:10: '>' compares numbers; text compares with '==', '!=' or 'in'",
    ]
    with pytest.raises(ValueError, match="used twice"):
        PolicyDocument(
            name="code",
            thresholds=DecisionThresholds(review=0.2, decline=0.8),
            alert_budget=10,
            rules=[RuleSpec(name="a", when="true", action="allow", reason="x")] * 2,
        )


def test_costs_become_the_threshold_choosers_costs():
    assert Costs().decision_costs().use_amount
    fixed = Costs(review=1, false_decline=2, missed_fraud=150).decision_costs(max_review_rate=0.01)
    assert (fixed.fraud_loss, fixed.use_amount, fixed.review_cost, fixed.decline_cost) == (
        150,
        False,
        1,
        2,
    )
    assert fixed.max_review_rate == 0.01
