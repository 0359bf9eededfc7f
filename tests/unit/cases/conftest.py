"""Fixtures of the case tests: one migrated SQLite template, copied for each test that writes.

Migrating costs ~0.3 s, copying the file ~1 ms: each test gets its own database from the
template (the bundled queues, the alert store's tables, no users, no alerts).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.cases.case_doubles import CaseWorld, fast_argon2, world


@pytest.fixture(scope="module", autouse=True)
def _fast_argon2() -> Iterator[None]:
    with fast_argon2():
        yield


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cases-template") / "app.db"
    made = world(f"sqlite:///{path}")
    made.close()  # the last connection closed: the WAL is checkpointed into the file
    return path


@pytest.fixture()
def fresh(template_db: Path, tmp_path: Path) -> Iterator[CaseWorld]:
    """A world of its own for one test."""
    path = tmp_path / "app.db"
    shutil.copyfile(template_db, path)
    made = world(f"sqlite:///{path}", migrate=False)
    yield made
    made.close()
