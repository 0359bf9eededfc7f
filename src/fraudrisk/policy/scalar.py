"""The scalar evaluator: a checked expression compiled into closures over one transaction.

Used by the sync API (one transaction per request): no numpy per operation, no tree walk per
call. The closures read a *row*: a mapping from column name to a normalised value (``float``
for numbers, NaN when missing; ``str`` for text, ``""`` when missing; a naive UTC ``datetime``;
a ``frozenset`` of feature names for ``reasons``) — :class:`fraudrisk.policy.inputs.RowBuilder`
builds it. The semantics are the vectorised evaluator's (a property test keeps them equal):
division by zero is NaN, ``min``/``max`` are NaN when an argument is, no comparison with NaN
holds but ``!=``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from fraudrisk.policy.syntax import (
    Arithmetic,
    Boolean,
    Call,
    Comparison,
    Expr,
    Logical,
    Membership,
    Name,
    Negate,
    Not,
    Number,
    String,
)
from fraudrisk.policy.types import REASONS, Environment

Row = Mapping[str, Any]
Compiled = Callable[[Row], Any]
NAN = math.nan

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}


def _divide(a: float, b: float) -> float:
    return a / b if b else NAN


def _smallest(*values: float) -> float:
    if len(values) == 2:
        a, b = values
        return NAN if a != a or b != b else (a if a <= b else b)
    return NAN if any(v != v for v in values) else min(values)


def _largest(*values: float) -> float:
    if len(values) == 2:
        a, b = values
        return NAN if a != a or b != b else (a if a >= b else b)
    return NAN if any(v != v for v in values) else max(values)


def _hour(moment: datetime) -> float:
    return float(moment.hour)


def _weekday(moment: datetime) -> float:
    return float(moment.weekday())


#: The scalar implementation of every function of :data:`fraudrisk.policy.types.FUNCTIONS`.
SCALAR_FUNCTIONS: Mapping[str, Callable[..., float]] = {
    "abs": abs,
    "min": _smallest,
    "max": _largest,
    "hour": _hour,
    "weekday": _weekday,
}

#: How an operand is read: a row column, a constant, or a compiled sub-expression. Binary
#: nodes inline the first two (one closure per node, not three: a frame is most of the cost).
Operand = tuple[str, Any]


def _binary(op: Callable[[Any, Any], Any], left: Operand, right: Operand) -> Compiled:
    """One closure applying ``op`` to two operands, reading columns and constants inline."""
    (lk, lv), (rk, rv) = left, right
    if lk == "const" and rk == "const":
        value = op(lv, rv)
        return lambda row: value
    if lk == "col":
        if rk == "const":
            return lambda row: op(row[lv], rv)
        if rk == "col":
            return lambda row: op(row[lv], row[rv])
        return lambda row: op(row[lv], rv(row))
    if lk == "const":
        if rk == "col":
            return lambda row: op(lv, row[rv])
        return lambda row: op(lv, rv(row))
    if rk == "const":
        return lambda row: op(lv(row), rv)
    if rk == "col":
        return lambda row: op(lv(row), row[rv])
    return lambda row: op(lv(row), rv(row))


def _all(parts: tuple[Compiled, ...]) -> Compiled:
    if len(parts) > 4:
        return _all((_all(parts[:4]), *parts[4:]))
    match parts:
        case (a, b):
            return lambda row: a(row) and b(row)
        case (a, b, c):
            return lambda row: a(row) and b(row) and c(row)
        case (a, b, c, d):
            return lambda row: a(row) and b(row) and c(row) and d(row)
    raise AssertionError(parts)


def _any(parts: tuple[Compiled, ...]) -> Compiled:
    if len(parts) > 4:
        return _any((_any(parts[:4]), *parts[4:]))
    match parts:
        case (a, b):
            return lambda row: a(row) or b(row)
        case (a, b, c):
            return lambda row: a(row) or b(row) or c(row)
        case (a, b, c, d):
            return lambda row: a(row) or b(row) or c(row) or d(row)
    raise AssertionError(parts)


#: ``column OP constant``, the most common condition: inlined into and/or chains.
Leaf = tuple[Callable[[Any, Any], Any], str, Any]


def _leaves(op: str, leaves: list[Leaf]) -> Compiled | None:
    """One closure for a chain of two or three ``column OP constant`` conditions."""
    if op == "and":
        match leaves:
            case [(f, a, x), (g, b, y)]:
                return lambda row: f(row[a], x) and g(row[b], y)
            case [(f, a, x), (g, b, y), (h, c, z)]:
                return lambda row: f(row[a], x) and g(row[b], y) and h(row[c], z)
    else:
        match leaves:
            case [(f, a, x), (g, b, y)]:
                return lambda row: f(row[a], x) or g(row[b], y)
            case [(f, a, x), (g, b, y), (h, c, z)]:
                return lambda row: f(row[a], x) or g(row[b], y) or h(row[c], z)
    return None


class _Compiler:
    """Turns nodes into closures; names resolve to their columns once, here."""

    def leaf(self, node: Expr) -> Leaf | None:
        """``(op, column, constant)`` of a ``name OP constant`` comparison, else None."""
        if (
            isinstance(node, Comparison)
            and isinstance(node.left, Name)
            and isinstance(node.right, Number | String | Boolean)
        ):
            return _OPERATORS[node.op], self.column(node.left.name), node.right.value
        return None

    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    def column(self, name: str) -> str:
        return self.environment.symbols[name].column

    def operand(self, node: Expr) -> Operand:
        if isinstance(node, Number | String | Boolean):
            return "const", node.value
        if isinstance(node, Name):
            return "col", self.column(node.name)
        return "fn", self.build(node)

    def build(self, node: Expr) -> Compiled:
        match node:
            case Number(value=value) | String(value=value) | Boolean(value=value):
                return lambda row: value
            case Name(name=name):
                column = self.column(name)
                return lambda row: row[column]
            case Call():
                return self.call(node)
            case Negate(operand=operand):
                return self.negate(operand)
            case Arithmetic() | Comparison():
                function = _divide if node.op == "/" else _OPERATORS[node.op]
                return _binary(function, self.operand(node.left), self.operand(node.right))
            case Membership():
                return self.membership(node)
            case Not(operand=operand):
                inner = self.build(operand)
                return lambda row: not inner(row)
            case Logical(op=op, operands=operands):
                leaves = [self.leaf(operand) for operand in operands]
                if all(leaves):
                    inlined = _leaves(op, leaves)  # type: ignore[arg-type]
                    if inlined is not None:
                        return inlined
                parts = tuple(self.build(operand) for operand in operands)
                return _all(parts) if op == "and" else _any(parts)
        raise AssertionError(f"unknown node {node!r}")

    def negate(self, operand: Expr) -> Compiled:
        kind, value = self.operand(operand)
        if kind == "const":
            negated = -value
            return lambda row: negated
        if kind == "col":
            return lambda row: -row[value]
        return lambda row: -value(row)

    def call(self, node: Call) -> Compiled:
        function = SCALAR_FUNCTIONS[node.function]
        if len(node.args) == 1:
            kind, value = self.operand(node.args[0])
            if kind == "const":
                result = function(value)
                return lambda row: result
            if kind == "col":
                return lambda row: function(row[value])
            return lambda row: function(value(row))
        if len(node.args) == 2:
            return _binary(function, *map(self.operand, node.args))
        args = tuple(self.build(arg) for arg in node.args)
        return lambda row: function(*[arg(row) for arg in args])

    def membership(self, node: Membership) -> Compiled:
        negated = node.negated
        if node.container is not None:
            assert isinstance(node.element, String)
            feature = node.element.value
            if negated:
                return lambda row: feature not in row[REASONS]
            return lambda row: feature in row[REASONS]
        allowed = frozenset(item.value for item in node.items or ())
        kind, value = self.operand(node.element)
        if kind == "col":
            if negated:
                return lambda row: row[value] not in allowed
            return lambda row: row[value] in allowed
        element = self.build(node.element)
        if negated:
            return lambda row: element(row) not in allowed
        return lambda row: element(row) in allowed


def compile_scalar(expression: Expr, environment: Environment) -> Compiled:
    """A function of one row computing ``expression`` (which must have been checked)."""
    return _Compiler(environment).build(expression)
