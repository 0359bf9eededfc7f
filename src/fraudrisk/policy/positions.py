"""Where a character of a YAML scalar's value sits in the file (1-based line and column).

PyYAML's composer marks where each node starts and ends. A character of the *value* is found
from the *source* text between those marks:

- single-line plain, ``'single'`` and ``"double"`` quoted scalars: exactly, undoing the quoting
  (``''`` in single quotes, backslash escapes in double quotes);
- multi-line scalars (folded plain or quoted, ``|`` literal and ``>`` folded blocks): each source
  line's text is found in the value in order, so a position is exact within a line, and the
  join between two lines maps to the end of the first.

When the source cannot be matched, positions fall back to the node's start.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from yaml.nodes import ScalarNode

_DOUBLE_ESCAPE_LENGTH = {"x": 4, "u": 6, "U": 10}


@dataclass(frozen=True)
class Segment:
    """A run of the value found at one place of the source (0-based line and column)."""

    value_start: int
    value_end: int
    line: int
    column: int


def _quoted_segments(raw: str, style: str, line: int, column: int) -> list[Segment]:
    """One segment per decoded character of a single-line quoted scalar."""
    segments, i, out = [], 1, 0
    while i < len(raw) - 1:
        width = 1
        if style == "'" and raw[i : i + 2] == "''":
            width = 2
        elif style == '"' and raw[i] == "\\":
            width = _DOUBLE_ESCAPE_LENGTH.get(raw[i + 1 : i + 2], 2)
        segments.append(Segment(out, out + 1, line, column + i))
        out += 1
        i += width
    return segments


def _line_segments(node: ScalarNode, lines: list[str]) -> list[Segment]:
    """Segments of a multi-line scalar: each source line's text found in the value in order."""
    start, end = node.start_mark, node.end_mark
    block = node.style in ("|", ">")
    segments, cursor = [], 0
    for number in range(start.line + (1 if block else 0), min(end.line, len(lines) - 1) + 1):
        source = lines[number]
        first = start.column if number == start.line else 0
        last = end.column if number == end.line else len(source)
        piece = source[first:last]
        indent = first + len(piece) - len(piece.lstrip())
        piece = piece.strip()
        if node.style in ("'", '"'):
            if number == start.line:
                piece, indent = piece[1:], indent + 1
            if number == end.line:
                piece = piece[:-1]
        if not piece:
            continue
        found = node.value.find(piece, cursor)
        if found < 0:
            continue
        segments.append(Segment(found, found + len(piece), number, indent))
        cursor = found + len(piece)
    return segments


class ScalarPositions:
    """Maps offsets of a scalar node's value to 1-based (line, column) of the file."""

    def __init__(self, node: ScalarNode, text: str) -> None:
        self.node = node
        start, end = node.start_mark, node.end_mark
        raw = text[start.index : end.index]
        if start.line == end.line and node.style in (None, "'", '"'):
            if node.style is None:
                segments = [Segment(0, len(node.value), start.line, start.column)]
            else:
                segments = _quoted_segments(raw, node.style, start.line, start.column)
                if len(segments) != len(node.value):
                    segments = []
        else:
            segments = _line_segments(node, text.splitlines())
        self.segments = segments
        self.starts = [s.value_start for s in segments]

    def at(self, offset: int) -> tuple[int, int]:
        """The 1-based (line, column) of the value's character at ``offset``."""
        index = bisect_right(self.starts, offset) - 1
        if index < 0:
            mark = self.node.start_mark
            return mark.line + 1, mark.column + 1
        segment = self.segments[index]
        within = min(offset - segment.value_start, segment.value_end - segment.value_start)
        return segment.line + 1, segment.column + within + 1
