"""What goes wrong with a policy, and where: problems as ``file:line:column: message``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    """One problem of a policy file, at a 1-based line and column of its source."""

    source: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        """The problem as JSON-ready fields (``source``, ``line``, ``column``, ``message``)."""
        return asdict(self)


class PolicyError(ValueError):
    """A policy that cannot be used: every problem found, in source order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: (p.source, p.line, p.column)))
        super().__init__("\n".join(str(p) for p in self.problems))


class ExpressionError(ValueError):
    """A problem of one expression, at character offsets of its text (``end`` exclusive)."""

    def __init__(self, message: str, start: int, end: int | None = None) -> None:
        self.message = message
        self.start = start
        self.end = start + 1 if end is None else end
        super().__init__(f"{start + 1}: {message}")


class PolicyInputError(ValueError):
    """Data handed to an engine lacks what the policy reads (a column, the reason codes)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""
