"""Suite-wide guards."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import feast.infra.online_stores.sqlite  # noqa: F401 -- registers Feast's converters first
import pytest

#: sqlite3's converters as Feast registers them: a library imported by one test (IPython's
#: history) registers its own global "timestamp" converter, which breaks Feast's online store.
_SQLITE_CONVERTERS = dict(sqlite3.converters)


@pytest.fixture(autouse=True)
def _pristine_sqlite_converters() -> Iterator[None]:
    """Each test starts with sqlite3's converters as Feast expects them."""
    sqlite3.converters.clear()
    sqlite3.converters.update(_SQLITE_CONVERTERS)
    yield
