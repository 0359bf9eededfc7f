"""The rule language's parser: precedence, positions, every error at its offset, no Python."""

from __future__ import annotations

import builtins
import os
import re
from pathlib import Path

import pytest

from fraudrisk.policy.errors import ExpressionError, PolicyError
from fraudrisk.policy.expressions import parse, tokenize
from fraudrisk.policy.loader import load_policy_text
from fraudrisk.policy.syntax import (
    Arithmetic,
    Boolean,
    Call,
    Comparison,
    Logical,
    Membership,
    Name,
    Negate,
    Not,
    Number,
    String,
    names_in,
)

POLICY_SOURCE = Path(__file__).resolve().parents[3] / "src" / "fraudrisk" / "policy"


def shape(node):
    """A compact, position-free rendering of a tree (to compare precedence)."""
    match node:
        case Number(value=v) | String(value=v) | Boolean(value=v):
            return v
        case Name(name=n):
            return n
        case Call(function=f, args=args):
            return (f, *map(shape, args))
        case Negate(operand=o):
            return ("neg", shape(o))
        case Not(operand=o):
            return ("not", shape(o))
        case Arithmetic(op=op, left=a, right=b) | Comparison(op=op, left=a, right=b):
            return (op, shape(a), shape(b))
        case Logical(op=op, operands=operands):
            return (op, *map(shape, operands))
        case Membership(element=e, items=items, container=c, negated=neg):
            right = [shape(i) for i in items] if items is not None else shape(c)
            return ("not in" if neg else "in", shape(e), right)
    raise AssertionError(node)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a or b and c", ("or", "a", ("and", "b", "c"))),
        ("a and b or c", ("or", ("and", "a", "b"), "c")),
        ("a and b and c", ("and", "a", "b", "c")),
        ("a or b or c and d", ("or", "a", "b", ("and", "c", "d"))),
        ("not a and b", ("and", ("not", "a"), "b")),
        ("not not a", ("not", ("not", "a"))),
        ("not x == 1", ("not", ("==", "x", 1.0))),
        ("x + 1 > y * 2", (">", ("+", "x", 1.0), ("*", "y", 2.0))),
        ("1 + 2 * 3", ("+", 1.0, ("*", 2.0, 3.0))),
        ("(1 + 2) * 3", ("*", ("+", 1.0, 2.0), 3.0)),
        ("a - b - c", ("-", ("-", "a", "b"), "c")),
        ("a / b / c", ("/", ("/", "a", "b"), "c")),
        ("-a * b", ("*", ("neg", "a"), "b")),
        ("- -a", ("neg", ("neg", "a"))),
        ("a - -1", ("-", "a", ("neg", 1.0))),
        ("x in [1, -2.5, 3e2]", ("in", "x", [1.0, -2.5, 300.0])),
        ("c not in ['a', \"b\",]", ("not in", "c", ["a", "b"])),
        ("'f' in reasons", ("in", "f", "reasons")),
        ("not 'f' in reasons", ("not", ("in", "f", "reasons"))),
        ("x + 1 in [2]", ("in", ("+", "x", 1.0), [2.0])),
        ("a == true or b != false", ("or", ("==", "a", True), ("!=", "b", False))),
        ("max(a, b, c) >= abs(-d)", (">=", ("max", "a", "b", "c"), ("abs", ("neg", "d")))),
        ("hour(tx_datetime) <= 6", ("<=", ("hour", "tx_datetime"), 6.0)),
        ("1_000 < amount", ("<", 1000.0, "amount")),
        ('\'it\\\'s\' == "say \\"hi\\""', ("==", "it's", 'say "hi"')),
        ("((a))", "a"),
    ],
)
def test_precedence_and_associativity(text, tree):
    assert shape(parse(text)) == tree


def test_nodes_keep_their_offsets():
    tree = parse("amount > 100 and hour(tx_datetime) < 6")
    assert isinstance(tree, Logical)
    comparison, call_comparison = tree.operands
    assert (comparison.start, comparison.end) == (0, 12)
    assert (comparison.left.start, comparison.left.end) == (0, 6)
    call = call_comparison.left
    assert isinstance(call, Call) and (call.start, call.end) == (17, 34)
    assert (call.args[0].start, call.args[0].end) == (22, 33)
    assert (tree.start, tree.end) == (0, 38)


def test_names_in_collects_every_name():
    tree = parse("amount > 1 and (channel in ['ecom'] or max(risk, x) > 0) and 'f' in reasons")
    assert names_in(tree) == {"amount", "channel", "risk", "x", "reasons"}


def test_tokens_and_keywords():
    kinds = [(t.kind, t.text) for t in tokenize("a<=1 and not'x'")]
    assert kinds == [
        ("name", "a"),
        ("op", "<="),
        ("number", "1"),
        ("keyword", "and"),
        ("keyword", "not"),
        ("string", "'x'"),
        ("end", ""),
    ]


@pytest.mark.parametrize(
    ("text", "offset", "message"),
    [
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        ("a = 1", 2, "use '==' to compare"),
        ("a && b", 2, "use 'and'"),
        ("a || b", 2, "use 'or'"),
        ("!a", 0, "use 'not'"),
        ("a % 2", 2, "'%' is not an operator"),
        ("x.y > 1", 1, "attributes do not exist"),
        ("'abc", 0, "unterminated string"),
        ('amount > "x', 9, "unterminated string"),
        ("'a\\q'", 2, "unknown escape '\\q'"),
        ("1.5.2 > x", 0, "malformed number"),
        ("1e > x", 0, "malformed number"),
        ("12abc > x", 0, "malformed number"),
        ("1__0 > x", 0, "malformed number"),
        ("amount > 5 risk", 11, "an operator is missing"),
        ("amount > 5 and", 14, "expected a value"),
        ("(amount > 5", 11, "expected ')' to close the parenthesis"),
        ("amount > 5)", 10, "unexpected ')'"),
        ("a < b < c", 6, "comparisons do not chain"),
        ("a == b in [1]", 7, "comparisons do not chain"),
        ("x in []", 5, "empty list"),
        ("x in [y]", 6, "a list holds literals only"),
        ("x in [1 + 2]", 8, "expected ']' to close the list"),
        ("x in [-'a']", 7, "a list holds literals only"),
        ("[1] == x", 0, "a list [...] can only follow 'in'"),
        ("x not 5", 6, "'not' here must be followed by 'in'"),
        ("sqrt(x) > 1", 0, "unknown function 'sqrt'"),
        ("maxx(a, b) > 1", 0, "unknown function 'maxx' (did you mean 'max'?)"),
        ("abs(1", 5, "expected ')' to close the call of abs()"),
        ("abs(1,, 2)", 6, "expected a value"),
        ("amount > é", 9, "unexpected character 'é'"),
    ],
)
def test_errors_name_their_offset(text, offset, message):
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert message in caught.value.message
    assert caught.value.start == offset


INJECTIONS = [
    "__import__('os').system('touch /tmp/pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "().__class__",
    "lambda: 0",
    "lambda x: x",
    "eval('1')",
    "exec('import os')",
    "open('/etc/passwd').read()",
    "getattr(risk, '__class__')",
    "[x for x in ()]",
    "amount if True else risk",
    "amount > 1; import os",
    "risk.__class__",
    "{'a': 1}",
    "f'{risk}'",
    "amount > 1 # comment",
    "`ls`",
    "@decorator",
    "globals()",
    "breakpoint()",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_python_injection_is_a_parse_error_and_runs_nothing(text, monkeypatch):
    calls: list[str] = []

    def trap(name):
        def called(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called")

        return called

    for name in ("eval", "exec", "compile", "breakpoint"):
        monkeypatch.setattr(builtins, name, trap(name))
    monkeypatch.setattr(os, "system", trap("os.system"))
    with pytest.raises(ExpressionError):
        parse(text)
    monkeypatch.undo()  # the YAML loader may import lazily: traps only around the parser
    policy = (
        "name: p\nthresholds: {review: 0.1, decline: 0.9}\nalert_budget: 1\nrules:\n"
        f"  - name: r\n    when: >-\n      {text}\n    action: decline\n    reason: x\n"
    )
    with pytest.raises(PolicyError):
        load_policy_text(policy)
    assert calls == []


def test_the_package_never_evaluates_user_text_as_python():
    forbidden = re.compile(
        r"(?<![\w.])(eval|exec|compile|literal_eval)\s*\(|^\s*(import ast|from ast)\b", re.M
    )
    offenders = [
        f"{path.name}: {match.group(0).strip()}"
        for path in sorted(POLICY_SOURCE.glob("*.py"))
        for match in forbidden.finditer(path.read_text())
    ]
    assert offenders == []
