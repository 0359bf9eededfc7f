"""Routing: ordered rules on a case's attributes pick its queue (versioned YAML).

A rule's ``when`` holds conditions that must all be true: ``decision`` (one of a list),
``amount_gte`` / ``amount_lt``, ``risk_gte`` / ``risk_lt``, ``reason_code`` (a feature among
the model's reasons), ``variant``, ``channel`` and ``country`` (lists). The first matching rule
wins; otherwise the default queue. The file is validated on load and errors name the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class RoutingError(ValueError):
    """A routing file that cannot be used, with where and why."""


class Conditions(BaseModel):
    """What must hold for a rule to route a case (every condition given)."""

    model_config = ConfigDict(extra="forbid")

    decision: list[str] | None = None
    amount_gte: float | None = None
    amount_lt: float | None = None
    risk_gte: float | None = Field(None, ge=0, le=1)
    risk_lt: float | None = Field(None, ge=0, le=1)
    reason_code: list[str] | None = None
    variant: list[str] | None = None
    channel: list[str] | None = None
    country: list[str] | None = None


class Rule(BaseModel):
    """One routing rule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    queue: str
    when: Conditions = Conditions()


class QueueSpec(BaseModel):
    """A queue the routing file declares."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    sla_minutes: int = Field(ge=1)
    description: str = ""


class RoutingRules(BaseModel):
    """A routing file: its version, queues, rules and default queue."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    default_queue: str
    queues: list[QueueSpec]
    rules: list[Rule] = []

    @model_validator(mode="after")
    def _queues_exist(self) -> RoutingRules:
        names = {q.name for q in self.queues}
        for target, where in [(self.default_queue, "default_queue")] + [
            (r.queue, f"rule {r.name!r}") for r in self.rules
        ]:
            if target not in names:
                raise ValueError(f"{where} routes to {target!r}, which is not among the queues")
        return self


@dataclass(frozen=True)
class CaseFacts:
    """What routing looks at."""

    decision: str
    amount: float
    risk: float
    reason_features: Sequence[str]
    variant: str
    channel: str | None = None
    country: str | None = None


def _holds(when: Conditions, facts: CaseFacts) -> bool:
    checks = (
        when.decision is None or facts.decision in when.decision,
        when.amount_gte is None or facts.amount >= when.amount_gte,
        when.amount_lt is None or facts.amount < when.amount_lt,
        when.risk_gte is None or facts.risk >= when.risk_gte,
        when.risk_lt is None or facts.risk < when.risk_lt,
        when.reason_code is None or bool(set(when.reason_code) & set(facts.reason_features)),
        when.variant is None or facts.variant in when.variant,
        when.channel is None or facts.channel in when.channel,
        when.country is None or facts.country in when.country,
    )
    return all(checks)


def route(rules: RoutingRules, facts: CaseFacts) -> tuple[str, str]:
    """The queue of a case and the rule that chose it (``default`` when none matched)."""
    for rule in rules.rules:
        if _holds(rule.when, facts):
            return rule.queue, rule.name
    return rules.default_queue, "default"


def load_rules(path: str | Path | None = None) -> RoutingRules:
    """Read a routing file (default: the bundled ``routing.yaml``).

    Raises:
        RoutingError: Naming the file and each problem.
    """
    if path:
        source, text = str(path), Path(path).read_text()
    else:
        source = "the bundled routing.yaml"
        text = (resources.files(__package__) / "routing.yaml").read_text()
    try:
        return RoutingRules.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as error:
        raise RoutingError(f"{source}: not YAML: {error}") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in error.errors()
        )
        raise RoutingError(f"{source}: {problems}") from None
