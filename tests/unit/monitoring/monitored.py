"""A registered model with its reference, its feature table and score records, for monitoring.

Shared by the monitoring and registry tests, the `monitored` fixture registered in
tests/unit/conftest.py (read them, do not change them: other tests rely on the days).
A synthetic 70-day lake (from 2018-04-01) gives the feature table one partition per day. The
features warm up for 37 days (30-day windows + the 7-day label delay), so the model is
trained — and its reference drawn — on days 40..57; days 58..64 are an undrifted window of
the same world; days 75..81 hold a shifted copy of that window (amounts ×3, night-time
transactions, faster and denser card use). The alert store holds version 1's scores of the
undrifted window, and of days 90..91 whose transactions have no feature rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests.support.data import synthetic_frame
from xgboost import XGBClassifier

from fraudrisk.alerts.store import AlertStore, ScoreRecord
from fraudrisk.config import MlflowSettings, MonitoringSettings, Settings
from fraudrisk.features.definitions import FEATURE_NAMES, KEY_COLUMNS
from fraudrisk.features.table import FeatureTable
from fraudrisk.registry.versions import RegisteredVersion, bootstrap_champion, register_model
from fraudrisk.training.calibrate import CalibratedModel, calibrate
from fraudrisk.training.gate import GateResult
from fraudrisk.training.thresholds import choose_thresholds

EPOCH = dt.date(2018, 4, 1)
TRAIN_DAYS = (40, 57)
QUIET_DAYS = (58, 64)
SHIFT_OFFSET = 17  # shifted copy of the quiet days: days 75..81
ORPHAN_DAYS = (90, 91)  # score records without feature rows
REFERENCE_ROWS = 1500
#: Features the shifted window moves (7 of 19: above the default 30 % drift share).
SHIFTED_FEATURES = (
    "tx_amount",
    "customer_id_avg_amount_1day_window",
    "customer_id_avg_amount_7day_window",
    "customer_id_avg_amount_30day_window",
    "customer_id_seconds_since_prev_tx",
    "customer_id_nb_tx_1hour_window",
    "tx_during_night",
)


def day(index: int) -> dt.date:
    """The date of day ``index`` of the synthetic lake."""
    return EPOCH + dt.timedelta(days=index)


@dataclass
class Monitored:
    """Settings over a throw-away HOME, the data, and version 1 (champion, with reference)."""

    settings: Settings
    frame: pd.DataFrame
    train: pd.DataFrame
    model: CalibratedModel
    version: RegisteredVersion

    @property
    def table_uri(self) -> str:
        return self.settings.feature_table_uri


def _days(frame: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    days = frame["tx_time_days"]
    return frame[(days >= first) & (days <= last)]


def shifted_copy(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows moved SHIFT_OFFSET days later, new ids, the world changed."""
    moved = rows.copy()
    moved["transaction_id"] += 10_000_000
    moved["tx_datetime"] += pd.Timedelta(days=SHIFT_OFFSET)
    moved["tx_time_days"] += SHIFT_OFFSET
    for name in SHIFTED_FEATURES[:4]:
        moved[name] = moved[name] * 3
    moved["customer_id_seconds_since_prev_tx"] //= 4
    moved["customer_id_nb_tx_1hour_window"] += 2
    night = np.arange(len(moved)) % 5 < 3  # 60 % of the transactions at night: far more
    moved["tx_during_night"] = night.astype(moved["tx_during_night"].dtype)
    return moved


def write_table(uri: str, frame: pd.DataFrame) -> None:
    """One feature-table partition per day, as the batch job writes them."""
    table = FeatureTable.open(uri)
    for index, rows in frame.groupby("tx_time_days"):
        table.write_day(
            day(int(index)),
            pa.Table.from_pandas(rows[[*KEY_COLUMNS, *FEATURE_NAMES]], preserve_index=False),
        )


def train_model(train: pd.DataFrame) -> CalibratedModel:
    """A small XGBoost, calibrated on the last third of its rows."""
    names = list(FEATURE_NAMES)
    cut = int(len(train) * 2 / 3)
    fit, hold = train.iloc[:cut], train.iloc[cut:]
    model = XGBClassifier(n_estimators=30, max_depth=3, random_state=0, n_jobs=1)
    model.fit(fit[names].to_numpy(np.float32), fit["tx_fraud"].to_numpy())
    return calibrate(model, hold[names].astype(np.float32), hold["tx_fraud"], "sigmoid")


def register(
    settings: Settings,
    model: CalibratedModel,
    train: pd.DataFrame,
    *,
    with_reference: bool,
    training_data_ref: str = "synthetic",
) -> RegisteredVersion:
    """Register ``model`` (gate passed), with or without its monitoring reference."""
    names = list(FEATURE_NAMES)
    inputs = train[names].astype(np.float32)
    return register_model(
        settings,
        model,
        metrics={"average_precision": 0.8, "auc_roc": 0.95, "card_precision@100": 0.4},
        params={"model": "xgboost"},
        artifacts={},
        feature_names=names,
        input_example=inputs.head(3),
        training_data_ref=training_data_ref,
        thresholds=choose_thresholds(train["tx_fraud"], model.predict_fraud_probability(inputs)),
        gate_result=GateResult(passed=True),
        reference_rows=train if with_reference else None,
    )


def write_score_records(settings: Settings, rows: pd.DataFrame, scores: np.ndarray) -> None:
    """Score records of version 1 for ``rows``, as the stream scorer writes them."""
    records = [
        ScoreRecord(
            transaction_id=int(row.transaction_id),
            customer_id=int(row.customer_id),
            terminal_id=int(row.terminal_id),
            tx_datetime=row.tx_datetime.to_pydatetime(),
            tx_amount=float(row.tx_amount),
            risk_score=float(score),
            decision="approve",
            reason_codes="[]",
            model_version="1",
            variant="champion",
            fallback=False,
        )
        for row, score in zip(rows.itertuples(index=False), scores, strict=True)
    ]
    store = AlertStore(settings.db_url)
    try:
        store.write(records)
    finally:
        store.close()


@pytest.fixture(scope="package")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    home: Path = tmp_path_factory.mktemp("monitoring-home")
    settings = Settings(
        home=home,
        mlflow=MlflowSettings(),
        monitoring=MonitoringSettings(reference_rows=REFERENCE_ROWS),
    )
    frame = synthetic_frame(customers=100, days=70)
    quiet = _days(frame, *QUIET_DAYS)
    write_table(str(home / "features"), pd.concat([frame, shifted_copy(quiet)]))
    train = _days(frame, *TRAIN_DAYS)
    model = train_model(train)
    version = register(settings, model, train, with_reference=True)
    bootstrap_champion(settings, version.version)
    names = list(FEATURE_NAMES)
    orphans = quiet.head(300).assign(
        transaction_id=lambda f: f["transaction_id"] + 20_000_000,
        tx_datetime=lambda f: f["tx_datetime"] + pd.Timedelta(days=ORPHAN_DAYS[0] - QUIET_DAYS[0]),
    )
    for rows in (quiet, orphans):
        write_score_records(
            settings, rows, model.predict_fraud_probability(rows[names].astype(np.float32))
        )
    return Monitored(settings, frame, train, model, version)
