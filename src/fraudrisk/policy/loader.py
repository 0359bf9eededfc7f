"""Read a policy from YAML: every problem, of the file or of a condition, as file:line:col.

The file is composed with PyYAML (safe, no Python tags), so every node keeps its position;
the content is validated by :class:`~fraudrisk.policy.document.PolicyDocument` and each rule's
``when`` parsed and type-checked; every problem found is reported at once, sorted by position
(:class:`~fraudrisk.policy.errors.PolicyError`). The bundled default policy is package data
(``policies/default.yaml``, shipped as ``fraudrisk.policies``).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fraudrisk.policy.document import (
    ACTIONS,
    DUPLICATE_RULE,
    PROBLEM,
    CheckedPolicy,
    PolicyDocument,
    check_expression,
    checked,
    duplicate_message,
    duplicate_names,
)
from fraudrisk.policy.errors import PolicyError, Problem, did_you_mean
from fraudrisk.policy.positions import ScalarPositions
from fraudrisk.policy.syntax import Expr
from fraudrisk.policy.types import Environment

#: Package holding the bundled policies, and the default one's file name.
POLICIES_PACKAGE = "fraudrisk.policies"
DEFAULT_POLICY = "default.yaml"
Path_ = tuple[str | int, ...]


class _Tree:
    """A composed YAML document as plain data, with the nodes of every path."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.loader = yaml.SafeLoader(text)
        self.values: dict[Path_, Node] = {}
        self.keys: dict[Path_, Node] = {}
        self.problems: list[Problem] = []

    def problem(self, node: Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(self.source, mark.line + 1, mark.column + 1, message))

    def build(self, node: Node, path: Path_ = (), seen: frozenset[int] = frozenset()) -> Any:
        self.values[path] = node
        if id(node) in seen:
            self.problem(node, "a YAML alias refers to itself")
            return None
        seen = seen | {id(node)}
        if isinstance(node, MappingNode):
            return self.mapping(node, path, seen)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), seen) for i, item in enumerate(node.value)]
        if path[-1:] == ("when",):
            return node.value  # the expression's text, whatever YAML would make of it
        return self.construct(node)

    def construct(self, node: Node) -> Any:
        """A scalar's value as YAML's safe schema types it (None, with a problem, if it can't)."""
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as error:
            self.problem(node, f"not valid here: {error.problem or error}")
            return None

    def mapping(self, node: MappingNode, path: Path_, seen: frozenset[int]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct(key_node)
            if not isinstance(key, str | int):
                self.problem(key_node, "a key must be a name")
                continue
            if key in out:
                self.problem(key_node, f"duplicate key {key!r}")
            self.keys[(*path, key)] = key_node
            out[key] = self.build(value_node, (*path, key), seen)
        return out


def _compose(text: str, source: str) -> tuple[_Tree, Any]:
    """The document's tree and plain data (None when it is not YAML, with the problem).

    The reader refuses control characters before any node is composed (a ``ReaderError``, not
    a marked one), and a deeply nested text exhausts the composer's recursion: a file or an API
    client may hold either, and each is a problem like any other, never a crash.
    """
    try:
        return _compose_tree(text, source)
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        problem = Problem(source, line, column, f"not valid YAML: {error.reason}")
    except RecursionError:
        problem = Problem(source, 1, 1, "not valid here: the text is nested too deeply")
    tree = _Tree("", source)
    tree.problems.append(problem)
    return tree, None


def _compose_tree(text: str, source: str) -> tuple[_Tree, Any]:
    tree = _Tree(text, source)
    try:
        root = tree.loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = ", ".join(filter(None, (error.context, error.problem))) or str(error)
        tree.problems.append(Problem(source, line, column, f"not valid YAML: {what}"))
        return tree, None
    finally:
        tree.loader.dispose()
    if root is None:
        tree.problems.append(
            Problem(source, 1, 1, "empty file: a policy needs name, thresholds, alert_budget")
        )
        return tree, None
    data = tree.build(root)
    if not isinstance(data, dict):
        tree.problem(root, "a policy is a mapping of name, thresholds, alert_budget, costs, rules")
        return tree, None
    return tree, data


def _model_at(path: Path_) -> type[BaseModel] | None:
    """The pydantic model validating the mapping at ``path`` (None when not a model)."""
    model: type[BaseModel] = PolicyDocument
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        found = [
            t
            for t in _types_in(field.annotation)
            if isinstance(t, type) and issubclass(t, BaseModel)
        ]
        if not found:
            return None
        model = found[0]
    return model


def _types_in(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _types_in(arg)


def _label(path: Path_, data: dict[str, Any]) -> str:
    """``thresholds.review`` or ``rule 'night-decline': action`` for a location."""
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        rules = data.get("rules")
        rule = rules[path[1]] if isinstance(rules, list) and path[1] < len(rules) else None
        name = rule.get("name") if isinstance(rule, dict) else None
        who = f"rule {name!r}" if isinstance(name, str) else f"rule {path[1] + 1}"
        rest = ".".join(str(p) for p in path[2:])
        return f"{who}: {rest}" if rest else who
    return ".".join(str(p) for p in path)


def _explain(error: ErrorDetails, path: Path_) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "missing":
        return f"missing {path[-1]!r}"
    if kind == "extra_forbidden":
        model = _model_at(path[:-1])
        hint = did_you_mean(str(path[-1]), model.model_fields) if model else ""
        return f"unknown key {path[-1]!r}{hint}"
    if kind == "literal_error" and path[-1:] == ("action",):
        hint = did_you_mean(str(error["input"]), ACTIONS)
        return f"unknown action {error['input']!r}{hint}: one of {', '.join(ACTIONS)}"
    if kind == "string_pattern_mismatch" and path[-1:] == ("name",):
        return "use lower-case letters, digits, '-' and '_' (e.g. large-at-night)"
    if kind == "string_type" and path[-1:] == ("when",):
        return "must be an expression: quote it (\"...\") or write it as a '>-' block"
    return message


def _schema_problems(
    tree: _Tree, data: dict[str, Any], error: ValidationError
) -> Iterator[Problem]:
    for detail in error.errors():
        if detail["type"] == DUPLICATE_RULE:
            continue  # found by _duplicate_rules, even when other fields are wrong
        path: Path_ = tuple(detail["loc"])
        if detail["type"] == PROBLEM:
            path = (*path, *detail.get("ctx", {}).get("at", ()))
        node = tree.keys.get(path) if detail["type"] == "extra_forbidden" else None
        where = path
        while node is None:
            node = tree.values.get(where)
            if node is None and not where:
                node = tree.values[()]
            where = where[:-1]
        label = _label(
            path[:-1] if detail["type"] in ("missing", "extra_forbidden") else path, data
        )
        message = _explain(detail, path)
        mark = node.start_mark
        prefix = f"{label}: " if label else ""
        yield Problem(tree.source, mark.line + 1, mark.column + 1, prefix + message)


def _duplicate_rules(tree: _Tree, data: dict[str, Any]) -> Iterator[Problem]:
    rules = data.get("rules")
    if not isinstance(rules, list):
        return
    names = [rule.get("name") if isinstance(rule, dict) else None for rule in rules]
    for i, first in duplicate_names(names).items():
        mark = tree.values[("rules", i, "name")].start_mark
        message = duplicate_message(str(names[i]), first)
        yield Problem(tree.source, mark.line + 1, mark.column + 1, message)


def _conditions(tree: _Tree, environment: Environment) -> list[Expr | None]:
    """Each rule's parsed condition (None when missing or wrong: problems go to ``tree``)."""
    conditions: list[Expr | None] = []
    index = 0
    while ("rules", index) in tree.values:
        node = tree.values.get(("rules", index, "when"))
        conditions.append(None)
        if isinstance(node, ScalarNode):
            condition, errors = check_expression(node.value, environment)
            positions = ScalarPositions(node, tree.text)
            for error in errors:
                line, column = positions.at(error.start)
                tree.problems.append(Problem(tree.source, line, column, error.message))
            conditions[-1] = condition
        index += 1
    return conditions


def load_policy_text(
    text: str, source: str = "<policy>", environment: Environment | None = None
) -> CheckedPolicy:
    """Read and check a policy from YAML text (``source`` names it in problems).

    Args:
        text: The YAML.
        source: The file name (or a label) problems start with.
        environment: Names and queues to check against (default: every transaction field and
            feature, any queue name).

    Raises:
        PolicyError: With every problem found, each ``source:line:column: message``.
    """
    environment = environment or Environment.standard()
    tree, data = _compose(text, source)
    if data is None:
        raise PolicyError(tree.problems)
    conditions = _conditions(tree, environment)
    tree.problems += _duplicate_rules(tree, data)
    document: PolicyDocument | None = None
    context = {"queues": environment.queues}
    try:
        document = PolicyDocument.model_validate(data, context=context)
    except ValidationError as error:
        tree.problems += _schema_problems(tree, data, error)
    if tree.problems or document is None:
        raise PolicyError(tree.problems)
    trees = [c for c in conditions if c is not None]
    return checked(document, trees, environment, source, text)


def load_policy(path: str | Path, environment: Environment | None = None) -> CheckedPolicy:
    """Read and check a policy file (see :func:`load_policy_text`).

    Raises:
        PolicyError: With every problem found (an unreadable file is one problem).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError([Problem(str(path), 1, 1, f"cannot read the file: {error}")]) from None
    return load_policy_text(text, str(path), environment)


def lint(path: str | Path, environment: Environment | None = None) -> list[Problem]:
    """Every problem of a policy file (empty when it can be used)."""
    try:
        load_policy(path, environment)
    except PolicyError as error:
        return list(error.problems)
    return []


def lint_text(
    text: str, source: str = "<policy>", environment: Environment | None = None
) -> list[Problem]:
    """Every problem of a policy's YAML text (empty when it can be used).

    ``str(problem)`` is ``source:line:column: message``.
    """
    try:
        load_policy_text(text, source, environment)
    except PolicyError as error:
        return list(error.problems)
    return []


def default_policy_text() -> str:
    """The YAML of the bundled default policy (``policies/default.yaml``)."""
    return (resources.files(POLICIES_PACKAGE) / DEFAULT_POLICY).read_text(encoding="utf-8")


def default_policy_path() -> Path:
    """Where the bundled default policy is (in the checkout, or the installed package)."""
    return Path(str(resources.files(POLICIES_PACKAGE) / DEFAULT_POLICY))


def load_default_policy(environment: Environment | None = None) -> CheckedPolicy:
    """The bundled default policy, checked."""
    return load_policy_text(default_policy_text(), str(default_policy_path()), environment)
