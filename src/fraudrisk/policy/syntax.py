"""The syntax tree of rule expressions: frozen dataclasses, one per construct.

Every node keeps the character offsets of its text in the expression (``start`` inclusive,
``end`` exclusive): problems found later (type errors) point there. Built by
:func:`fraudrisk.policy.expressions.parse`; read by the checker and both evaluators.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Node:
    """Base of the syntax tree: where the node's text starts and ends."""

    start: int
    end: int


@dataclass(frozen=True)
class Number(Node):
    """A number literal (always a float)."""

    value: float


@dataclass(frozen=True)
class String(Node):
    """A text literal, quoted with ``'`` or ``"``."""

    value: str


@dataclass(frozen=True)
class Boolean(Node):
    """``true`` or ``false``."""

    value: bool


@dataclass(frozen=True)
class Name(Node):
    """A transaction field, a feature, ``risk``, ``amount`` or ``reasons``."""

    name: str


@dataclass(frozen=True)
class Call(Node):
    """A call of one of the listed functions."""

    function: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Negate(Node):
    """Unary minus."""

    operand: Expr


@dataclass(frozen=True)
class Arithmetic(Node):
    """``+ - * /`` on numbers."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Comparison(Node):
    """``== != < <= > >=``."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Membership(Node):
    """``x [not] in [literals]`` (``items`` set) or ``x [not] in reasons`` (``container`` set)."""

    element: Expr
    items: tuple[Constant, ...] | None
    container: Expr | None
    negated: bool


@dataclass(frozen=True)
class Not(Node):
    """``not`` of a condition."""

    operand: Expr


@dataclass(frozen=True)
class Logical(Node):
    """A chain of ``and`` (or of ``or``): two or more operands, left to right."""

    op: str
    operands: tuple[Expr, ...]


#: A literal: what a list may hold.
Constant = Number | String | Boolean
#: Any expression.
Expr = (
    Number | String | Boolean | Name | Call | Negate | Arithmetic | Comparison | Membership | Not
) | Logical


def children(node: Expr) -> tuple[Expr, ...]:
    """The sub-expressions of ``node``, left to right."""
    match node:
        case Call(args=args):
            return args
        case Negate(operand=operand) | Not(operand=operand):
            return (operand,)
        case Arithmetic(left=left, right=right) | Comparison(left=left, right=right):
            return (left, right)
        case Membership(element=element, items=items, container=container):
            return (element, *(items or ()), *((container,) if container else ()))
        case Logical(operands=operands):
            return operands
    return ()


def names_in(node: Expr) -> frozenset[str]:
    """Every name ``node`` reads."""
    own = {node.name} if isinstance(node, Name) else set()
    return frozenset(own.union(*(names_in(c) for c in children(node))))
