"""Function-level imports say why they are not at the top of the module.

ARCHITECTURE ("Architecture", point 2): an import inside a function is allowed only where it
keeps a heavy import (feast, pyspark, mlflow, kserve, ...) off a fast path such as
``fraudrisk --help``, or breaks an import cycle, and then it carries a comment saying so.

The rule: a block of consecutive import statements inside a function (a single import is a
block of one) is accepted when its first import has a comment on its first or last line, or
on the line directly above it. Every import of the block is then accepted.
"""

from __future__ import annotations

import ast
import io
import pathlib
import textwrap
import tokenize

SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "fraudrisk"

_Import = ast.Import | ast.ImportFrom


def _comment_lines(source: str) -> set[int]:
    """Line numbers holding a comment (a real ``#`` comment, not one inside a string)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.start[0] for token in tokens if token.type == tokenize.COMMENT}


def _import_blocks(function: ast.AST) -> list[list[_Import]]:
    """The runs of consecutive import statements in every statement list of ``function``."""
    blocks: list[list[_Import]] = []
    for node in ast.walk(function):
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            statements = getattr(node, field, None)
            if not isinstance(statements, list):
                continue
            run: list[_Import] = []
            for statement in statements:
                if isinstance(statement, _Import):
                    run.append(statement)
                    continue
                if run:
                    blocks.append(run)
                run = []
            if run:
                blocks.append(run)
    return blocks


def uncommented_imports(source: str) -> list[int]:
    """Line numbers of the function-level imports of ``source`` that carry no comment."""
    tree = ast.parse(source)
    comments = _comment_lines(source)
    flagged: set[int] = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for block in _import_blocks(function):
            first = block[0]
            last_line = first.end_lineno or first.lineno
            if not comments & {first.lineno - 1, first.lineno, last_line}:
                flagged.update(statement.lineno for statement in block)
    return sorted(flagged)


def test_function_level_imports_have_a_comment() -> None:
    offenders = [
        f"{path.relative_to(SRC.parents[1])}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        for line in uncommented_imports(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, (
        "function-level imports without a comment (hoist them to the top of the module, or "
        "say why they are deferred, e.g. `# deferred: pulls mlflow`):\n" + "\n".join(offenders)
    )


def _source(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_the_checker_flags_an_uncommented_function_level_import() -> None:
    source = _source(
        """
        import os


        def f():
            x = 1
            import json
            return json.dumps(x), os.sep
        """
    )
    assert uncommented_imports(source) == [6]


def test_a_string_holding_a_hash_is_no_comment() -> None:
    source = _source(
        """
        def f():
            x = "# not a comment"
            import json
            return json.dumps(x)
        """
    )
    assert uncommented_imports(source) == [3]


def test_a_comment_on_the_first_import_of_a_block_covers_the_block() -> None:
    source = _source(
        """
        def f():
            import json  # deferred: reason

            import csv
            from os import path
            return json, csv, path


        def g():
            # deferred: reason
            from os import (
                path,
                sep,
            )
            import json
            return path, sep, json
        """
    )
    assert uncommented_imports(source) == []


def test_a_comment_on_a_later_import_does_not_cover_the_first() -> None:
    source = _source(
        """
        def f():
            import json
            import csv  # deferred: reason
            return json, csv
        """
    )
    assert uncommented_imports(source) == [2, 3]


def test_imports_in_nested_statements_and_methods_are_checked() -> None:
    source = _source(
        """
        import os


        class C:
            def m(self):
                if os.sep:
                    import json
                    return json
                return None
        """
    )
    assert uncommented_imports(source) == [7]
