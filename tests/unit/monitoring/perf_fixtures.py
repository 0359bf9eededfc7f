"""A lake with labels, a feature table, a registered champion and score records: for performance.

:func:`perf_world` reuses the monitoring package's ``monitored`` fixture (its champion, version
1, trained on days 40..57 with a recorded test-fold AP of 0.8, and its feature table) and adds
a lake holding the labels of its synthetic rows; :func:`build_perf_world` makes a world of its
own (for tests outside that package).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tests.support.data import EPOCH, build_lake
from tests.support.models import GOOD, register_xgboost

from fraudrisk.alerts.store import AlertStore, ScoreRecord
from fraudrisk.config import (
    DatabaseSettings,
    LakeSettings,
    MlflowSettings,
    MonitoringSettings,
    Settings,
)
from fraudrisk.io.lake import Lake
from fraudrisk.registry.versions import bootstrap_champion
from fraudrisk.training.dataset import load_frame

LAKE_DAYS = 60
TRAIN_DAYS = (37, 49)
BUDGET = 10
EXPECTED_AP = GOOD["average_precision"]
LAKE_COLUMNS = (
    "transaction_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
    "tx_amount",
    "tx_time_days",
    "tx_fraud",
    "tx_fraud_scenario",
)


def day(index: int) -> dt.date:
    """The date of day ``index`` of the lake."""
    return EPOCH + dt.timedelta(days=index)


@dataclass(frozen=True)
class PerfWorld:
    """Settings over a throw-away HOME, the lake's rows (features + labels), the champion."""

    settings: Settings
    frame: pd.DataFrame
    table_uri: str
    version: str

    def days(self, first: int, last: int) -> pd.DataFrame:
        """The rows of days ``first..last``."""
        index = self.frame["tx_time_days"]
        return self.frame[(index >= first) & (index <= last)]


def write_lake(uri: str, frame: pd.DataFrame) -> str:
    """A lake holding ``frame``'s transactions and labels, one partition per day."""
    lake = Lake.open(uri)
    lake.init(EPOCH)
    seconds = (frame["tx_datetime"] - pd.Timestamp(EPOCH)) // pd.Timedelta(seconds=1)
    rows = frame[[*LAKE_COLUMNS]].assign(tx_time_seconds=seconds)
    for index, day_rows in rows.groupby("tx_time_days"):
        lake.write_day(day(int(index)), pa.Table.from_pandas(day_rows, preserve_index=False))
    return uri


def perf_world(monitored: Any, root: Path) -> PerfWorld:
    """The ``monitored`` fixture's champion and feature table, with a lake of its labels."""
    base = monitored.settings
    settings = base.model_copy(
        update={
            "lake": LakeSettings(uri=write_lake(str(root / "lake"), monitored.frame)),
            "db": DatabaseSettings(url=f"sqlite:///{root / 'alerts.db'}"),
            "monitoring": base.monitoring.model_copy(update={"alert_budget": BUDGET}),
        }
    )
    return PerfWorld(settings, monitored.frame, monitored.table_uri, monitored.version.version)


def build_perf_world(root: Path) -> PerfWorld:
    """Lake, feature table and a registered champion under ``root``."""
    table_uri, lake_uri = build_lake(root, customers=120, days=LAKE_DAYS)
    settings = Settings(
        home=root / "home",
        lake=LakeSettings(uri=lake_uri),
        db=DatabaseSettings(url=f"sqlite:///{root / 'alerts.db'}"),
        mlflow=MlflowSettings(),
        monitoring=MonitoringSettings(alert_budget=BUDGET),
    )
    frame = load_frame(table_uri, lake_uri)
    index = frame["tx_time_days"]
    registered = register_xgboost(
        settings, frame[(index >= TRAIN_DAYS[0]) & (index <= TRAIN_DAYS[1])]
    )
    bootstrap_champion(settings, registered.version)
    return PerfWorld(settings, frame, table_uri, registered.version)


def write_scores(
    settings: Settings,
    rows: pd.DataFrame,
    scores: np.ndarray,
    variant: str = "champion",
    version: str = "1",
    fallback: bool = False,
) -> None:
    """Score records for ``rows``, as the stream scorer writes them."""
    records = [
        ScoreRecord(
            transaction_id=int(row.transaction_id),
            customer_id=int(row.customer_id),
            terminal_id=int(row.terminal_id),
            tx_datetime=pd.Timestamp(row.tx_datetime).to_pydatetime(),
            tx_amount=1.0,
            risk_score=float(score),
            decision="approve",
            reason_codes="[]",
            model_version=version,
            variant=variant,
            fallback=fallback,
        )
        for row, score in zip(rows.itertuples(index=False), scores, strict=True)
    ]
    store = AlertStore(settings.db_url)
    try:
        store.write(records)
    finally:
        store.close()


def good_scores(rows: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """Scores that rank every fraud first."""
    noise = np.random.default_rng(seed).random(len(rows)) * 0.2
    return np.asarray(rows["tx_fraud"].to_numpy() * 0.7 + noise)


def random_scores(rows: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """Scores that know nothing."""
    return np.random.default_rng(seed).random(len(rows))
