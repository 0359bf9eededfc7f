"""New MLflow sqlite databases are copied from one migrated database, not each migrated anew.

MLflow creates the tables of a new tracking/registry database and runs its ~60 alembic
migrations on it (≈1 s); the unit tests open fifteen-odd such databases (one per throw-away
HOME). The `mlflow_schema_template` fixture, registered in tests/unit/conftest.py, lets the
first one of a worker be migrated by MLflow itself, keeps a copy, and gives each later empty
database that copy (the same tables and alembic revision, via sqlite's backup API, in a few
ms). A database that is not sqlite, is in memory or already has tables goes through MLflow's
own code untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from mlflow.store.db import utils as db_utils
from mlflow.store.model_registry import sqlalchemy_store as registry_store


def _sqlite_file(engine: Any) -> Path | None:
    """The file of a file-backed sqlite engine, else None."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _has_tables(path: Path) -> bool:
    with closing(sqlite3.connect(path)) as connection:
        (count,) = connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        ).fetchone()
    return count > 0


def _copy(source: Path, target: Path) -> None:
    with closing(sqlite3.connect(source)) as read, closing(sqlite3.connect(target)) as write:
        read.backup(write)


def from_template(migrate: Callable[[Any], None], template: Path) -> Callable[[Any], None]:
    """``_initialize_tables`` that migrates the first empty sqlite database, copies the rest."""

    def initialize(engine: Any) -> None:
        path = _sqlite_file(engine)
        if path is None or not path.exists() or _has_tables(path):
            migrate(engine)
            return
        if template.exists():
            _copy(template, path)
            return
        migrate(engine)
        _copy(path, template)

    return initialize


@pytest.fixture(scope="package", autouse=True)
def mlflow_schema_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    template = tmp_path_factory.mktemp("mlflow-schema") / "mlflow.db"
    initialize = from_template(db_utils._initialize_tables, template)
    with pytest.MonkeyPatch.context() as patch:
        # The tracking store calls db_utils._initialize_tables; the registry store imported it.
        patch.setattr(db_utils, "_initialize_tables", initialize)
        patch.setattr(registry_store, "_initialize_tables", initialize)
        yield template
