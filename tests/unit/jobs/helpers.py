"""Shared pieces of the streaming unit tests: a platform home with a champion and a lake."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.data import EPOCH, synthetic_frame
from tests.support.models import register_xgboost

from fraudrisk.config import DatabaseSettings, MlflowSettings, Settings
from fraudrisk.data.fast import FastConfig
from fraudrisk.data.simulate import fast_days, write_days
from fraudrisk.io.lake import Lake

CUSTOMERS, DAYS = 60, 20


@dataclass(frozen=True)
class Platform:
    """A FRAUDRISK_HOME with a champion model, and a lake of ``DAYS`` days."""

    home: Path
    lake_uri: str

    def settings(self, db: Path) -> Settings:
        """Settings on this home with the alert store at ``db``."""
        return Settings(
            home=self.home, mlflow=MlflowSettings(), db=DatabaseSettings(url=f"sqlite:///{db}")
        )


def build_platform(home: Path) -> Platform:
    """Register a small XGBoost champion under ``home`` and simulate its lake."""
    from fraudrisk.registry.versions import bootstrap_champion

    settings = Settings(home=home, mlflow=MlflowSettings())
    version = register_xgboost(
        settings, synthetic_frame(customers=CUSTOMERS, days=40), n_estimators=30
    )
    bootstrap_champion(settings, version.version)
    lake = Lake.open(str(home / "lake"))
    lake.init(EPOCH)
    config = FastConfig(n_customers=CUSTOMERS, n_terminals=2 * CUSTOMERS, nb_days=DAYS)
    write_days(lake, fast_days(config))
    return Platform(home, str(home / "lake"))
