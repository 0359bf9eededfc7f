"""A policy file's content (pydantic), and a policy whose rule conditions are checked.

A policy: decision thresholds on the calibrated risk, the alert budget, optional costs, and
ordered rules. A rule: ``name`` (unique), ``when`` (a condition of the expression language),
``action`` and its argument, ``reason`` (shown in the case).

Actions and precedence (as Stripe Radar orders allow, block and review rules):

1. ``allow`` — approve, whatever the risk and the other rules (an allow-list);
2. ``decline`` — decline, whatever the risk;
3. the decline threshold — decline when ``risk >= decline``;
4. ``force_review`` — review an approval (never lowers a decline);
5. the review threshold — review when ``risk >= review``; else approve.

``route`` (to a queue) and ``raise_priority`` (by a factor) never change the decision: they
apply to the alert the decision makes. The first ``route`` rule that fires, in file order,
picks the queue; the largest factor of the ``raise_priority`` rules that fire is the factor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from fraudrisk.policy.checker import check_condition
from fraudrisk.policy.errors import ExpressionError, PolicyError, Problem, did_you_mean
from fraudrisk.policy.expressions import parse
from fraudrisk.policy.syntax import Expr, names_in
from fraudrisk.policy.types import Environment, Symbol
from fraudrisk.schemas import DecisionCosts

Action = Literal["allow", "decline", "force_review", "route", "raise_priority"]
ALLOW: Action = "allow"
DECLINE: Action = "decline"
FORCE_REVIEW: Action = "force_review"
ROUTE: Action = "route"
RAISE_PRIORITY: Action = "raise_priority"
ACTIONS: tuple[Action, ...] = get_args(Action)
#: Actions that set the decision, strongest first.
DECISION_ACTIONS: tuple[Action, ...] = (ALLOW, DECLINE, FORCE_REVIEW)
#: Rule and policy names: lower case, digits, ``-`` and ``_``.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
#: Largest priority factor a rule may apply.
MAX_FACTOR = 100.0
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]


#: Error type of the problems the models below raise (located by their ``at`` context).
PROBLEM = "policy"
#: Error type of a repeated rule name (the YAML loader finds those itself, with positions).
DUPLICATE_RULE = "duplicate_rule"


def _problem(message: str, *at: str | int, kind: str = PROBLEM) -> PydanticCustomError:
    """A validation error located ``at`` a field below the model that raises it."""
    return PydanticCustomError(kind, message, {"at": at})


def duplicate_names(names: Sequence[object]) -> dict[int, int]:
    """Position of each repeated name → position of its first use."""
    first: dict[object, int] = {}
    repeats: dict[int, int] = {}
    for i, name in enumerate(names):
        if isinstance(name, str) and name in first:
            repeats[i] = first[name]
        first.setdefault(name, i)
    return repeats


def duplicate_message(name: str, first: int) -> str:
    """The problem of a rule name used again (``first``: 0-based index of its first rule)."""
    return f"rule name {name!r} is used twice (first by rule {first + 1})"


class DecisionThresholds(BaseModel):
    """Review when ``risk >= review``, decline when ``risk >= decline`` (decline wins)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    review: float = Field(gt=0, lt=1, description="Review at or above this calibrated risk.")
    decline: float = Field(gt=0, lt=1, description="Decline at or above this calibrated risk.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.review >= self.decline:
            raise _problem(
                f"decline ({self.decline:g}) must be above review ({self.review:g})", "decline"
            )
        return self


class Costs(BaseModel):
    """What decisions cost (in the currency of the amounts): used to choose thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    review: float = Field(5.0, ge=0, description="Cost of one analyst review.")
    false_decline: float = Field(
        20.0, ge=0, description="Cost of declining a genuine transaction (customer friction)."
    )
    missed_fraud: Literal["amount"] | Annotated[float, Field(ge=0)] = Field(
        "amount", description="Loss of a missed fraud: its amount, or a fixed sum."
    )

    def decision_costs(self, max_review_rate: float | None = None) -> DecisionCosts:
        """The same costs as the threshold chooser of training takes them."""
        fixed = self.missed_fraud != "amount"
        return DecisionCosts(
            fraud_loss=float(self.missed_fraud) if fixed else DecisionCosts().fraud_loss,
            use_amount=not fixed,
            review_cost=self.review,
            decline_cost=self.false_decline,
            max_review_rate=max_review_rate,
        )


class RuleSpec(BaseModel):
    """One rule as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name = Field(description="Unique in the policy; recorded with every decision.")
    when: str = Field(description="The condition, in the expression language.")
    action: Action = Field(description="What the rule does when its condition holds.")
    queue: str | None = Field(None, description="The queue of a route rule.")
    factor: float | None = Field(
        None, gt=1, le=MAX_FACTOR, description="Priority multiplier of a raise_priority rule."
    )
    reason: str = Field(min_length=1, max_length=300, description="Shown in the case.")

    @model_validator(mode="after")
    def _argument(self, info: ValidationInfo) -> Self:
        if self.action == ROUTE:
            if self.queue is None:
                raise _problem("a route rule needs 'queue: <queue name>'", "action")
            queues = (info.context or {}).get("queues")
            if queues is not None and self.queue not in queues:
                hint = did_you_mean(self.queue, queues) or f" (queues: {', '.join(sorted(queues))})"
                raise _problem(f"unknown queue {self.queue!r}{hint}", "queue")
        elif self.queue is not None:
            raise _problem(f"'queue' is for route rules, this one is {self.action}", "queue")
        if self.action == RAISE_PRIORITY and self.factor is None:
            raise _problem("a raise_priority rule needs 'factor: <number above 1>'", "action")
        if self.action != RAISE_PRIORITY and self.factor is not None:
            raise _problem(f"'factor' is for raise_priority rules, not {self.action}", "factor")
        return self


class PolicyDocument(BaseModel):
    """A policy file: thresholds, alert budget, optional costs, rules in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name = Field(description="The policy's name.")
    description: str = Field("", description="What the policy is for.")
    thresholds: DecisionThresholds
    alert_budget: int = Field(ge=1, description="Reviews per day the analysts can handle.")
    costs: Costs | None = Field(None, description="Costs used to choose thresholds.")
    rules: list[RuleSpec] = Field([], description="Rules, in order.")

    @model_validator(mode="after")
    def _unique_rule_names(self) -> Self:
        for i, first in duplicate_names([rule.name for rule in self.rules]).items():
            message = duplicate_message(self.rules[i].name, first)
            raise _problem(message, "rules", i, "name", kind=DUPLICATE_RULE)
        return self


@dataclass(frozen=True)
class CheckedRule:
    """A rule whose condition parsed and type-checked."""

    spec: RuleSpec
    condition: Expr

    @property
    def name(self) -> str:
        """The rule's name."""
        return self.spec.name


@dataclass(frozen=True)
class CheckedPolicy:
    """A policy ready to apply: its document, its checked rules, what it was checked against.

    Attributes:
        document: The validated file content.
        rules: The rules in file order, their conditions parsed.
        environment: Names and queues it was checked against.
        source: Where it came from (a path, or a label).
        text: The YAML it was read from, when it was read from YAML.
    """

    document: PolicyDocument
    rules: tuple[CheckedRule, ...]
    environment: Environment
    source: str
    text: str | None = None

    @property
    def symbols(self) -> tuple[Symbol, ...]:
        """Every name the rules read, in environment order."""
        used = set().union(*(names_in(rule.condition) for rule in self.rules))
        return tuple(s for name, s in self.environment.symbols.items() if name in used)

    @property
    def columns(self) -> tuple[str, ...]:
        """Transaction and feature columns an engine must be given (no duplicates)."""
        wanted = (s.column for s in self.symbols if s.source in ("transaction", "feature"))
        return tuple(dict.fromkeys(wanted))

    @property
    def reads_reasons(self) -> bool:
        """Whether any rule reads the reason codes (then an engine must be given them)."""
        return any(s.source == "reasons" for s in self.symbols)


def check_expression(
    text: str, environment: Environment
) -> tuple[Expr | None, list[ExpressionError]]:
    """The parsed condition ``text`` (None when wrong) and its problems, at text offsets."""
    try:
        tree = parse(text)
    except ExpressionError as error:
        return None, [error]
    errors = list(check_condition(tree, environment))
    return (None if errors else tree), errors


def check_document(
    document: PolicyDocument, environment: Environment | None = None, source: str = "<policy>"
) -> CheckedPolicy:
    """Check the conditions of an already validated document (not read from YAML).

    Problems are located as ``<source>#rules[i].when:1:<column in the condition>``.

    Raises:
        PolicyError: With every problem of every rule.
    """
    environment = environment or Environment.standard()
    problems: list[Problem] = []
    rules: list[CheckedRule] = []
    for i, spec in enumerate(document.rules):
        tree, errors = check_expression(spec.when, environment)
        where = f"{source}#rules[{i}].when"
        problems += [Problem(where, 1, e.start + 1, e.message) for e in errors]
        queues = environment.queues
        if spec.queue is not None and queues is not None and spec.queue not in queues:
            hint = did_you_mean(spec.queue, queues)
            problems.append(
                Problem(f"{source}#rules[{i}].queue", 1, 1, f"unknown queue {spec.queue!r}{hint}")
            )
        if tree is not None:
            rules.append(CheckedRule(spec, tree))
    if problems:
        raise PolicyError(problems)
    return CheckedPolicy(document, tuple(rules), environment, source)


def checked(
    document: PolicyDocument,
    conditions: Sequence[Expr],
    environment: Environment,
    source: str,
    text: str | None,
) -> CheckedPolicy:
    """A checked policy from a document and its rules' already checked conditions."""
    rules = tuple(
        CheckedRule(spec, tree) for spec, tree in zip(document.rules, conditions, strict=True)
    )
    return CheckedPolicy(document, rules, environment, source, text)
