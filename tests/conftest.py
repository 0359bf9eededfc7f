"""Suite-wide guards."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

#: sqlite3's own converters, as at start: a library imported by one test (IPython's history)
#: registers a global "timestamp" converter that breaks Feast's SQLite online store later.
_SQLITE_CONVERTERS = dict(sqlite3.converters)


@pytest.fixture(autouse=True)
def _pristine_sqlite_converters() -> Iterator[None]:
    """Each test starts with sqlite3's converters as the interpreter had them."""
    sqlite3.converters.clear()
    sqlite3.converters.update(_SQLITE_CONVERTERS)
    yield
