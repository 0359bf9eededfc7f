"""The dashboard's analytics on a real PostgreSQL: the unit tests' world, the same figures.

The world of ``tests/unit/cases/test_analytics.py`` is written to a database of this module's
own on the session's server; every grouping of ``history`` and several ``live_window``
buckets are checked against the brute force, and against the very rows SQLite answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from tests.unit.cases.test_analytics import (
    FIRST_DAY,
    World,
    as_tuple,
    check_history,
    check_live,
    make_world,
    same_figures,
    write_world,
)

from fraudrisk.alerts.store import AlertStore
from fraudrisk.cases.analytics import GroupBy, history, live_window
from fraudrisk.io import database

pytestmark = pytest.mark.integration

RANGES = [
    (dt.date(2026, 3, 1), dt.date(2026, 3, 9)),
    (dt.date(2026, 3, 2), dt.date(2026, 3, 3)),
    (dt.date(2026, 3, 4), dt.date(2026, 3, 4)),
]


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture(scope="module")
def postgres(case_db: str, world: World) -> Iterator[Engine]:
    engine = database.create_engine(case_db)
    database.upgrade(engine)
    AlertStore(case_db).close()
    write_world(engine, world)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def sqlite(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('analytics-pg')) / 'app.db'}"
    engine = database.open_database(url)
    AlertStore(url).close()
    write_world(engine, world)
    yield engine
    engine.dispose()


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_history_matches_brute_force(
    postgres: Engine, world: World, start: dt.date, end: dt.date
) -> None:
    check_history(postgres, world, start, end)


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_history_equals_sqlite(
    postgres: Engine, sqlite: Engine, start: dt.date, end: dt.date
) -> None:
    for group_by in GroupBy:
        on_pg = [as_tuple(r) for r in history(postgres, start, end, group_by)]
        on_sqlite = [as_tuple(r) for r in history(sqlite, start, end, group_by)]
        assert len(on_pg) == len(on_sqlite), group_by
        for pg, lite in zip(on_pg, on_sqlite, strict=True):
            assert same_figures(pg, lite), (group_by, pg, lite)


@pytest.mark.parametrize("seconds", [60, 3600, 86_400])
def test_live_window_matches_brute_force_and_sqlite(
    postgres: Engine, sqlite: Engine, world: World, seconds: int
) -> None:
    since = FIRST_DAY + dt.timedelta(hours=20, minutes=7, seconds=13)
    until = since + dt.timedelta(days=2)
    check_live(postgres, world, since, until, seconds)
    assert live_window(postgres, since, until, seconds) == live_window(
        sqlite, since, until, seconds
    )
