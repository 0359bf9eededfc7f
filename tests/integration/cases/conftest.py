"""The case tests on a real PostgreSQL server: a database of its own for each test module.

The session's server (``postgres_server``) is shared by every integration test; each module
here creates its database (``cases_<module>``), migrates it and drops it at the end, so the
modules neither see each other's rows nor the other packages' ``alerts`` database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from tests.unit.cases.case_doubles import fast_argon2


def psycopg_url(server: str, database: str) -> str:
    return server.replace("postgresql://", "postgresql+psycopg://") + f"/{database}"


@pytest.fixture(scope="module")
def case_db(postgres_server: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of an empty database for this module (dropped after it)."""
    name = "cases_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    admin = sa.create_engine(psycopg_url(postgres_server, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield psycopg_url(postgres_server, name)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="module", autouse=True)
def _fast_argon2() -> Iterator[None]:
    with fast_argon2():
        yield
