"""Fixtures of the API tests: an app factory, JWT keys, and a small registered model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.support.data import synthetic_frame
from tests.support.models import register_xgboost, states_before, unix_seconds
from tests.unit.api.helpers import RsaKeys, api_settings, rsa_keys, rules_only, settings_with

from fraudrisk.api.app import create_app
from fraudrisk.config import MlflowSettings, Settings
from fraudrisk.scoring.state_reader import MemoryStateReader

AppFactory = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture(scope="session")
def keys() -> RsaKeys:
    return rsa_keys()


@pytest.fixture()
def make_client(keys: RsaKeys) -> AppFactory:
    """``with make_client(**api_overrides, scorer=..., producer=...) as client:`` (lifespan on)."""

    @contextmanager
    def factory(
        *,
        scorer: Any = None,
        producer: Any = None,
        clock: Any = None,
        settings: Settings | None = None,
        **api: Any,
    ) -> Iterator[TestClient]:
        settings = settings or settings_with(api_settings(keys, **api))
        scorer = scorer or rules_only(settings)
        extra = {"clock": clock} if clock is not None else {}
        app = create_app(settings, scorer=scorer, producer=producer, relay=False, **extra)
        with TestClient(app) as client:
            yield client

    return factory


@dataclass
class Registered:
    """A registry whose champion is a small XGBoost model, its data and entity state."""

    settings: Settings
    rows: pd.DataFrame
    states: MemoryStateReader


@pytest.fixture(scope="package")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    home: Path = tmp_path_factory.mktemp("api-serving-home")
    settings = Settings(home=home, mlflow=MlflowSettings())
    frame = synthetic_frame(customers=60, days=40)
    from fraudrisk.registry.versions import bootstrap_champion

    version = register_xgboost(settings, frame[frame["tx_time_days"] < 28], seed=0)
    bootstrap_champion(settings, version.version)
    rows = frame[frame["tx_time_days"] == 35].sort_values(["tx_datetime", "transaction_id"])
    states = states_before(frame, int(unix_seconds(rows).min()))
    return Registered(settings, rows, states)
