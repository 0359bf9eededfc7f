"""The rule expression language: tokens, syntax tree, and a recursive-descent parser.

User text is tokenised and parsed here, never handed to Python (no ``eval``, ``exec``,
``compile`` or :mod:`ast`): the only things an expression can do are the nodes below. Loosest
to tightest binding::

    or  →  and  →  not  →  == != < <= > >= in, not in  →  + -  →  * /  →  unary -  →  atoms

Comparisons do not chain (``a < b < c`` is an error: write ``a < b and b < c``). ``in`` takes a
list of literals (``channel in ['ecom', 'moto']``) or ``reasons`` (``'tx_amount' in reasons``).
Only the functions of :data:`fraudrisk.policy.types.FUNCTIONS` can be called. The tree is
:mod:`fraudrisk.policy.syntax`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from fraudrisk.policy.errors import ExpressionError, did_you_mean
from fraudrisk.policy.syntax import (
    Arithmetic,
    Boolean,
    Call,
    Comparison,
    Constant,
    Expr,
    Logical,
    Membership,
    Name,
    Negate,
    Not,
    Number,
    String,
)
from fraudrisk.policy.types import FUNCTIONS

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>(?:\d+(?:_\d+)*(?:\.\d+(?:_\d+)*)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
      | (?P<op>==|!=|<=|>=|[<>+\-*/(),\[\]])
    """,
    re.VERBOSE,
)
#: Things Python or other rule languages spell differently, and what to write instead.
_HINTS = {
    "=": "use '==' to compare",
    "&": "use 'and'",
    "|": "use 'or'",
    "!": "use 'not' (or '!=')",
    ".": "attributes do not exist: only names, literals, operators and the listed functions",
    "%": "'%' is not an operator",
    ":": "':' is not part of an expression (quote the whole expression in the YAML)",
    "{": "'{' is not part of an expression",
    "}": "'}' is not part of an expression",
}
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}


@dataclass(frozen=True)
class Token:
    """One token: its kind (``number string name keyword op end``), text and offsets."""

    kind: str
    text: str
    start: int
    end: int


def _unquote(text: str, start: int) -> str:
    out, i = [], 1
    while i < len(text) - 1:
        char = text[i]
        if char == "\\":
            escaped = text[i + 1]
            if escaped not in _ESCAPES:
                raise ExpressionError(f"unknown escape '\\{escaped}' in a string", start + i)
            out.append(_ESCAPES[escaped])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _bad_character(text: str, at: int) -> ExpressionError:
    char = text[at]
    if char in "'\"":
        return ExpressionError("unterminated string", at, len(text))
    hint = _HINTS.get(char)
    return ExpressionError(f"unexpected character {char!r}" + (f": {hint}" if hint else ""), at)


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token.

    Raises:
        ExpressionError: At the first character that starts no token.
    """
    tokens, at = [], 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise _bad_character(text, at)
        kind = match.lastgroup or ""
        if kind == "number" and match.end() < len(text) and _continues(text[match.end()]):
            raise ExpressionError(f"malformed number {text[at : match.end() + 1]!r}", at)
        if kind != "space":
            word = match.group()
            kind = "keyword" if kind == "name" and word in KEYWORDS else kind
            tokens.append(Token(kind, word, at, match.end()))
        at = match.end()
    tokens.append(Token("end", "", len(text), len(text)))
    return tokens


def _continues(char: str) -> bool:
    return char.isalnum() or char in "._"


# ------------------------------------------------------------------------------- parser


def parse(text: str) -> Expr:
    """The syntax tree of one expression.

    Raises:
        ExpressionError: At the first problem, with its offsets in ``text``.
    """
    parser = _Parser(text, tokenize(text))
    if parser.peek.kind == "end":
        raise ExpressionError("empty expression: write a condition", 0, max(len(text), 1))
    tree = parser.disjunction()
    parser.expect_end()
    return tree


class _Parser:
    """Recursive descent, one method per precedence level."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.at = 0

    @property
    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def accept(self, *texts: str) -> Token | None:
        token = self.peek
        if token.kind in ("op", "keyword") and token.text in texts:
            return self.take()
        return None

    def expect(self, text: str, why: str) -> Token:
        token = self.accept(text)
        if token is None:
            raise self.unexpected(f"expected {text!r} {why}")
        return token

    def expect_end(self) -> None:
        token = self.peek
        if token.kind != "end":
            hint = ""
            if token.kind in ("name", "number", "string") or token.text == "(":
                hint = ": an operator is missing before it ('and', 'or', '==', ...)"
            raise ExpressionError(f"unexpected {token.text!r}{hint}", token.start, token.end)

    def unexpected(self, message: str) -> ExpressionError:
        token = self.peek
        if token.kind == "end":
            return ExpressionError(f"{message}, found the end", token.start)
        return ExpressionError(f"{message}, found {self.describe(token)}", token.start, token.end)

    @staticmethod
    def describe(token: Token) -> str:
        return "the end" if token.kind == "end" else f"{token.text!r}"

    def logical(self, op: str, parse_operand: Callable[[], Expr]) -> Expr:
        first = parse_operand()
        operands = [first]
        while self.accept(op):
            operands.append(parse_operand())
        if len(operands) == 1:
            return first
        return Logical(op, tuple(operands), start=first.start, end=operands[-1].end)

    def disjunction(self) -> Expr:
        return self.logical("or", self.conjunction)

    def conjunction(self) -> Expr:
        return self.logical("and", self.negation)

    def negation(self) -> Expr:
        token = self.accept("not")
        if token is None:
            return self.comparison()
        operand = self.negation()
        return Not(operand, start=token.start, end=operand.end)

    def comparison(self) -> Expr:
        left = self.sum()
        node = self.comparison_rest(left)
        if node is not left and (self.peek.text in COMPARISONS or self.peek.text in ("in", "not")):
            raise ExpressionError(
                "comparisons do not chain: join them with 'and' (a < b and b < c)",
                self.peek.start,
                self.peek.end,
            )
        return node

    def comparison_rest(self, left: Expr) -> Expr:
        token = self.peek
        if token.kind == "op" and token.text in COMPARISONS:
            self.take()
            right = self.sum()
            return Comparison(token.text, left, right, start=left.start, end=right.end)
        negated = False
        if token.text == "not" and token.kind == "keyword":
            self.take()
            if self.peek.text != "in":
                raise self.unexpected("'not' here must be followed by 'in'")
            negated = True
        if self.accept("in") is None:
            return left
        return self.membership(left, negated)

    def membership(self, element: Expr, negated: bool) -> Expr:
        if self.peek.text == "[":
            items, end = self.list_literal()
            return Membership(element, items, None, negated, start=element.start, end=end)
        container = self.sum()
        return Membership(element, None, container, negated, start=element.start, end=container.end)

    def list_literal(self) -> tuple[tuple[Constant, ...], int]:
        self.expect("[", "to open a list")
        items: list[Constant] = []
        while self.peek.text != "]":
            items.append(self.literal())
            if self.accept(",") is None:
                break
        close = self.expect("]", "to close the list")
        if not items:
            raise ExpressionError("empty list: nothing can be in it", close.start - 1, close.end)
        return tuple(items), close.end

    def literal(self) -> Constant:
        minus = self.accept("-")
        token = self.peek
        atom = self.atom() if token.kind in ("number", "string", "keyword") else None
        if not isinstance(atom, Number | String | Boolean) or (
            minus and not isinstance(atom, Number)
        ):
            raise ExpressionError(
                "a list holds literals only (numbers, 'text', true, false)",
                token.start,
                max(token.end, token.start + 1),
            )
        if minus and isinstance(atom, Number):
            return Number(-atom.value, start=minus.start, end=atom.end)
        return atom

    def sum(self) -> Expr:
        return self.binary(("+", "-"), self.product)

    def product(self) -> Expr:
        return self.binary(("*", "/"), self.unary)

    def binary(self, ops: tuple[str, ...], operand: Callable[[], Expr]) -> Expr:
        left = operand()
        while (token := self.accept(*ops)) is not None:
            right = operand()
            left = Arithmetic(token.text, left, right, start=left.start, end=right.end)
        return left

    def unary(self) -> Expr:
        token = self.accept("-")
        if token is None:
            return self.atom()
        operand = self.unary()
        return Negate(operand, start=token.start, end=operand.end)

    def atom(self) -> Expr:
        token = self.peek
        if token.kind == "number":
            self.take()
            return Number(float(token.text), start=token.start, end=token.end)
        if token.kind == "string":
            self.take()
            return String(_unquote(token.text, token.start), start=token.start, end=token.end)
        if token.kind == "keyword" and token.text in ("true", "false"):
            self.take()
            return Boolean(token.text == "true", start=token.start, end=token.end)
        if token.kind == "name":
            self.take()
            return self.call(token) if self.peek.text == "(" else self.name(token)
        if self.accept("("):
            inner = self.disjunction()
            self.expect(")", "to close the parenthesis")
            return inner
        if token.text == "[":
            raise ExpressionError("a list [...] can only follow 'in' or 'not in'", token.start)
        raise self.unexpected("expected a value (a name, a number, 'text', true, false or '(')")

    def name(self, token: Token) -> Name:
        return Name(token.text, start=token.start, end=token.end)

    def call(self, token: Token) -> Call:
        if token.text not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise ExpressionError(
                f"unknown function {token.text!r}{did_you_mean(token.text, FUNCTIONS)}: "
                f"the functions are {known}",
                token.start,
                token.end,
            )
        self.expect("(", "after the function name")
        args: list[Expr] = []
        while self.peek.text != ")":
            args.append(self.disjunction())
            if self.accept(",") is None:
                break
        close = self.expect(")", f"to close the call of {token.text}()")
        return Call(token.text, tuple(args), start=token.start, end=close.end)
