"""``fraudrisk dashboard screenshots``: the README's PNGs of the main pages, made in Chromium.

The command builds its own world in a temporary folder, serves the dashboard on loopback and
drives Debian's Chromium (never a download); each PNG must be a real 1280x900 picture of a
page, not a blank one, and nothing may keep running after.
"""

from __future__ import annotations

import struct
import threading
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudrisk.cli.dashboard import app

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
MAIN_PAGES = {"01-sign-in", "02-my-queue", "03-case", "04-policies", "05-policy-diff"}


def png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """Width, height and the number of distinct bytes' triples of the first rows (a PNG)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    chunks, at = [], 8
    while at < len(data):
        length = struct.unpack(">I", data[at : at + 4])[0]
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            chunks.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    pixels = zlib.decompress(b"".join(chunks))
    colours = {pixels[i : i + 3] for i in range(0, len(pixels) - 3, 3)}
    return width, height, len(colours)


def test_the_command_writes_a_picture_of_each_main_page(tmp_path: Path) -> None:
    threads = set(threading.enumerate())
    result = CliRunner().invoke(app, ["screenshots", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    written = {path.stem for path in tmp_path.glob("*.png")}
    assert MAIN_PAGES <= written <= MAIN_PAGES | {"06-live"}
    for name in written:
        path = tmp_path / f"{name}.png"
        width, height, colours = png_size_and_colours(path)
        assert (width, height) == (1280, 900), name
        assert colours > 20, f"{name} looks blank"
        assert path.stat().st_size < 400_000, name
        assert str(path) in " ".join(result.output.split()), result.output
    left = [t for t in set(threading.enumerate()) - threads if t.is_alive()]
    assert not [t for t in left if t.name.startswith("screenshots-")]


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(app, ["screenshots", "--help"])

    assert result.exit_code == 0
    assert "fraudrisk dashboard screenshots --out docs/screenshots" in result.output
