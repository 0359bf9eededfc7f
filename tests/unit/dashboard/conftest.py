"""Fixtures of the dashboard's unit tests: a world of cases and people for each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.unit.cases.case_doubles import fast_argon2, world
from tests.unit.dashboard.pages import Floor, dashboard, populate


@pytest.fixture(scope="module", autouse=True)
def _fast_argon2() -> Iterator[None]:
    with fast_argon2():
        yield


@pytest.fixture()
def floor(tmp_path: Path) -> Iterator[Floor]:
    """A world of its own for one test: cases of three customers, one person of each role."""
    made = world(f"sqlite:///{tmp_path / 'app.db'}")
    yield populate(made)
    made.close()


@pytest.fixture()
def client(floor: Floor) -> Iterator[TestClient]:
    with TestClient(dashboard(floor.world)) as made:
        yield made
