"""The vectorised evaluator: a checked expression compiled into numpy operations on columns.

Used by backtests (millions of rows) and the stream scorer's batches: one numpy operation per
node and batch. Columns are normalised by :class:`fraudrisk.policy.inputs.PolicyBatch`
(float64 numbers with NaN for missing, ``str`` arrays with ``""`` for missing,
``datetime64[us]`` naive UTC, one boolean mask per reason feature). The semantics are the
scalar evaluator's: division by zero is NaN, ``min``/``max`` propagate NaN.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

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
from fraudrisk.policy.types import Environment

Array = npt.NDArray[Any]
BoolArray = npt.NDArray[np.bool_]


class Columns(Protocol):
    """What a vectorised expression reads: normalised columns and reason masks of a batch."""

    def __len__(self) -> int:
        """Rows of the batch."""
        ...

    def column(self, name: str) -> Array:
        """The normalised column ``name``."""
        ...

    def reason_mask(self, feature: str) -> BoolArray:
        """True where ``feature`` is among the row's reason codes."""
        ...


Vectorised = Callable[[Columns], Any]

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


def _divide(a: Any, b: Any) -> Any:
    return np.where(np.asarray(b) == 0, np.nan, np.true_divide(a, b))


def _hour(moments: Array) -> Array:
    hours = np.asarray(moments, dtype="datetime64[us]").astype("datetime64[h]").astype(np.int64)
    return (hours % 24).astype(np.float64)


def _weekday(moments: Array) -> Array:
    days = np.asarray(moments, dtype="datetime64[us]").astype("datetime64[D]").astype(np.int64)
    return ((days + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday (3, Monday = 0)


#: The vectorised implementation of every function of :data:`fraudrisk.policy.types.FUNCTIONS`.
VECTOR_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "abs": np.abs,
    "min": lambda *values: reduce(np.minimum, values),
    "max": lambda *values: reduce(np.maximum, values),
    "hour": _hour,
    "weekday": _weekday,
}


class _Compiler:
    """Turns nodes into functions of a batch's columns."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    def build(self, node: Expr) -> Vectorised:
        match node:
            case Number(value=value) | String(value=value) | Boolean(value=value):
                return lambda columns: value
            case Name(name=name):
                column = self.environment.symbols[name].column
                return lambda columns: columns.column(column)
            case Call():
                function = VECTOR_FUNCTIONS[node.function]
                args = tuple(self.build(arg) for arg in node.args)
                return lambda columns: function(*(arg(columns) for arg in args))
            case Negate(operand=operand):
                inner = self.build(operand)
                return lambda columns: np.negative(inner(columns))
            case Arithmetic() | Comparison():
                function = _divide if node.op == "/" else _OPERATORS[node.op]
                left, right = self.build(node.left), self.build(node.right)
                return lambda columns: function(left(columns), right(columns))
            case Membership():
                return self.membership(node)
            case Not(operand=operand):
                inner = self.build(operand)
                return lambda columns: np.logical_not(inner(columns))
            case Logical():
                combine = np.logical_and if node.op == "and" else np.logical_or
                parts = tuple(self.build(operand) for operand in node.operands)
                return lambda columns: reduce(combine, (part(columns) for part in parts))
        raise AssertionError(f"unknown node {node!r}")

    def membership(self, node: Membership) -> Vectorised:
        negated = node.negated
        if node.container is not None:
            assert isinstance(node.element, String)
            feature = node.element.value
            return lambda columns: columns.reason_mask(feature) ^ negated
        allowed = np.array([item.value for item in node.items or ()])
        element = self.build(node.element)
        return lambda columns: np.isin(element(columns), allowed, invert=negated)


def compile_vector(expression: Expr, environment: Environment) -> Callable[[Columns], BoolArray]:
    """A function of a batch computing the condition ``expression`` on every row.

    The expression must have been checked as a condition; the result is a boolean array of
    the batch's length (a constant condition is broadcast).
    """
    compiled = _Compiler(environment).build(expression)

    def condition(columns: Columns) -> BoolArray:
        with np.errstate(all="ignore"):  # inf and NaN are values here, as in the scalar path
            result = np.asarray(compiled(columns), dtype=np.bool_)
        if result.shape != (len(columns),):
            result = np.broadcast_to(result, (len(columns),)).copy()
        return result

    return condition
