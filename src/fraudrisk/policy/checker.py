"""The type checker: every name known, every operator on the types it takes, conditions bool.

:func:`check_condition` reports all the problems of one expression (not only the first); a
sub-expression that is already wrong is not reported again by the nodes around it.
"""

from __future__ import annotations

from collections.abc import Sequence

from fraudrisk.policy.errors import ExpressionError, did_you_mean
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
from fraudrisk.policy.types import FUNCTIONS, REASONS, Environment, Type

_ORDERING = frozenset({"<", "<=", ">", ">="})
_EQUALITY_TYPES = frozenset({Type.NUMBER, Type.STRING, Type.BOOL})
_NAME_HINTS = {
    "True": "write 'true'",
    "False": "write 'false'",
    "None": "a missing text reads as '' and a missing number never compares true",
    "null": "a missing text reads as '' and a missing number never compares true",
    "is": "use '=='",
}


def _article(kind: Type) -> str:
    return f"a {kind}" if kind is not Type.STRING_LIST else "a list of text (reasons)"


class _Checker:
    """Walks one expression; types of its nodes, problems in ``errors``."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.errors: list[ExpressionError] = []

    def fail(self, node: Expr, message: str) -> None:
        self.errors.append(ExpressionError(message, node.start, node.end))

    def type_of(self, node: Expr) -> Type | None:
        match node:
            case Number():
                return Type.NUMBER
            case String():
                return Type.STRING
            case Boolean():
                return Type.BOOL
            case Name():
                return self.name(node)
            case Call():
                return self.call(node)
            case Negate(operand=operand):
                return self.expect(operand, Type.NUMBER, "'-' needs a number")
            case Arithmetic():
                return self.arithmetic(node)
            case Comparison():
                return self.comparison(node)
            case Membership():
                return self.membership(node)
            case Not(operand=operand):
                known = self.expect(operand, Type.BOOL, "'not' needs a condition")
                return None if known is None else Type.BOOL
            case Logical():
                return self.logical(node)
        raise AssertionError(f"unknown node {node!r}")

    def expect(self, node: Expr, wanted: Type, what: str) -> Type | None:
        """The node's type if it is ``wanted``; else a problem and None."""
        found = self.type_of(node)
        if found is None or found is wanted:
            return found
        hint = ""
        if wanted is Type.BOOL and found is Type.NUMBER:
            hint = " (compare it, e.g. x > 0)"
        elif found is Type.DATETIME:
            hint = " (use hour(...) or weekday(...))"
        self.fail(node, f"{what}, got {_article(found)}{hint}")
        return None

    def name(self, node: Name) -> Type | None:
        symbol = self.environment.symbols.get(node.name)
        if symbol is not None:
            return symbol.type
        if node.name in FUNCTIONS:
            self.fail(node, f"{node.name!r} is a function: call it, e.g. {node.name}(...)")
        elif node.name in _NAME_HINTS:
            self.fail(node, f"unknown field {node.name!r}: {_NAME_HINTS[node.name]}")
        else:
            hint = did_you_mean(node.name, self.environment.symbols)
            self.fail(node, f"unknown field {node.name!r}{hint}")
        return None

    def call(self, node: Call) -> Type | None:
        signature = FUNCTIONS[node.function]
        n, wanted = len(node.args), len(signature.params)
        if n < wanted or (n > wanted and not signature.variadic):
            plural = "" if signature.arity == "1" else "s"
            self.fail(node, f"{node.function}() takes {signature.arity} argument{plural}, got {n}")
            return None
        ok = True
        for i, arg in enumerate(node.args):
            param = signature.params[min(i, wanted - 1)]
            what = f"argument {i + 1} of {node.function}() must be {_article(param)}"
            ok = self.expect(arg, param, what) is not None and ok
        return signature.result if ok else None

    def arithmetic(self, node: Arithmetic) -> Type | None:
        what = f"{node.op!r} needs numbers on both sides"
        left = self.expect(node.left, Type.NUMBER, what)
        right = self.expect(node.right, Type.NUMBER, what)
        return Type.NUMBER if left and right else None

    def comparison(self, node: Comparison) -> Type | None:
        left, right = self.type_of(node.left), self.type_of(node.right)
        if left is None or right is None:
            return None
        if node.op in _ORDERING:
            for side, kind in ((node.left, left), (node.right, right)):
                if kind is not Type.NUMBER:
                    self.fail(side, self.ordering_problem(node.op, kind))
                    return None
            return Type.BOOL
        if left is not right:
            self.fail(node, f"cannot compare {_article(left)} with {_article(right)}")
            return None
        if left not in _EQUALITY_TYPES:
            self.fail(node, f"{_article(left)} cannot be compared with {node.op!r}")
            return None
        return Type.BOOL

    @staticmethod
    def ordering_problem(op: str, kind: Type) -> str:
        if kind is Type.DATETIME:
            return f"{op!r} does not compare datetimes: compare hour(...) or weekday(...)"
        if kind is Type.STRING:
            return f"{op!r} compares numbers; text compares with '==', '!=' or 'in'"
        return f"{op!r} compares numbers, got {_article(kind)}"

    def membership(self, node: Membership) -> Type | None:
        if node.container is not None:
            return self.in_reasons(node, node.container)
        element = self.type_of(node.element)
        if element is None:
            return None
        if element not in (Type.NUMBER, Type.STRING):
            self.fail(node.element, f"'in' looks up a number or a text, got {_article(element)}")
            return None
        ok = True
        for item in node.items or ():
            kind = self.type_of(item)
            if kind is not None and kind is not element:
                self.fail(
                    item,
                    f"this item is {_article(kind)}, the value looked up is {_article(element)}",
                )
                ok = False
        return Type.BOOL if ok else None

    def in_reasons(self, node: Membership, container: Expr) -> Type | None:
        if not (isinstance(container, Name) and container.name == REASONS):
            kind = self.type_of(container)
            if kind is not None:
                self.fail(container, "'in' needs a list [...] or 'reasons' on its right")
            return None
        if not isinstance(node.element, String):
            self.fail(
                node.element,
                "the left of 'in reasons' must be a feature name in quotes, "
                "e.g. 'terminal_id_risk_7day_window' in reasons",
            )
            return None
        feature = node.element.value
        if feature not in self.environment.reason_features:
            hint = did_you_mean(feature, self.environment.reason_features)
            self.fail(node.element, f"{feature!r} is not a feature of the model{hint}")
            return None
        return Type.BOOL

    def logical(self, node: Logical) -> Type | None:
        what = f"{node.op!r} needs conditions on both sides"
        kinds = [self.expect(operand, Type.BOOL, what) for operand in node.operands]
        return Type.BOOL if all(kinds) else None


def type_of(
    expression: Expr, environment: Environment
) -> tuple[Type | None, list[ExpressionError]]:
    """The type of ``expression`` (None when wrong) and every problem found in it."""
    checker = _Checker(environment)
    kind = checker.type_of(expression)
    return kind, checker.errors


def check_condition(expression: Expr, environment: Environment) -> Sequence[ExpressionError]:
    """Every problem of ``expression`` as a rule's condition (it must be a bool)."""
    kind, errors = type_of(expression, environment)
    if kind is not None and kind is not Type.BOOL:
        hint = " (compare it, e.g. amount > 100)" if kind is Type.NUMBER else ""
        errors.append(
            ExpressionError(
                f"a condition must be true or false, this is {_article(kind)}{hint}",
                expression.start,
                expression.end,
            )
        )
    return errors
