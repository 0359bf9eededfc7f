"""Suite-wide guards."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator

import pytest

# Rich sizes its console from COLUMNS when stdout is no terminal (pytest-xdist workers): wide
# enough that tables and messages the tests read are not wrapped.
os.environ["COLUMNS"] = "200"

_FEAST_SQLITE = "feast.infra.online_stores.sqlite"
#: Converters Feast's SQLite online store registers (module-level functions of that module).
_FEAST_CONVERTERS = {
    "date": "convert_date",
    "datetime": "convert_datetime",
    "timestamp": "convert_timestamp",
}


@pytest.fixture(autouse=True)
def _feast_sqlite_converters() -> Iterator[None]:
    """Put back Feast's sqlite3 converters before each test.

    sqlite3 converters are global: a library imported by one test (IPython's history)
    registers its own "timestamp" converter, which breaks Feast's SQLite online store in the
    tests that run after it.
    """
    feast_sqlite = sys.modules.get(_FEAST_SQLITE)
    if feast_sqlite is not None:
        for name, function in _FEAST_CONVERTERS.items():
            sqlite3.register_converter(name, getattr(feast_sqlite, function))
    yield
