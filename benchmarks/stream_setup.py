"""What the stream benchmark runs against: a platform home, the transactions, a Kafka broker.

The home is built once under the work directory and reused (``--rebuild`` starts afresh):

* a lake of ``LAKE_DAYS`` days from the fast generator at the handbook's population (5,000
  customers, 10,000 terminals, ~9,600 transactions a day), its feature table and entity state,
  applied and materialised into the Feast online store (SQLite) — the state the scorers read;
* a calibrated XGBoost of the demo champion's size (the ``TUNED_56DAY`` recipe: 300 trees of
  depth 4) trained on that lake and registered as ``champion`` in the home's MLflow (SQLite);
* the transactions that follow the lake (the same simulation, later days), stored as Parquet:
  the benchmark's Kafka messages and sync API requests — new to the online store, as live
  traffic is.

So the benchmark needs nothing but ``make install`` (and Java + Maven for the broker, which
``make sysdeps`` installs) and does not depend on ``make demo``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

console = Console(stderr=True)
EPOCH = dt.date(2018, 4, 1)
LAKE_DAYS = 40
CUSTOMERS, TERMINALS = 5_000, 10_000
#: Simulated days after the lake (enough for the largest default N at ~9,600 a day).
STREAM_DAYS = 80
MESSAGE_COLUMNS = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount")
READY_MARK = "READY"


def bench_home(work: Path, rebuild: bool = False) -> Path:
    """The benchmark's FRAUDRISK_HOME under ``work`` (built on first use)."""
    home = work / "home"
    if rebuild and home.exists():
        shutil.rmtree(home)
    if (home / READY_MARK).is_file():
        return home
    if home.exists():  # a build that did not finish
        shutil.rmtree(home)
    home.mkdir(parents=True)
    with console.status("benchmark home: simulating the lake and the stream"):
        table_uri = _lake_and_stream(home)
    with console.status("benchmark home: Feast apply + materialise the online store"):
        _online_store(home, table_uri)
    with console.status("benchmark home: training and registering the champion"):
        _champion(home, table_uri)
    (home / READY_MARK).write_text(dt.datetime.now(dt.UTC).isoformat())
    return home


def home_settings(home: Path, **updates: Any) -> Any:
    """The platform settings of ``home`` (MLflow and Feast under it)."""
    from fraudrisk.config import MlflowSettings, Settings

    return Settings(home=home, mlflow=MlflowSettings(), **updates)


def _lake_and_stream(home: Path) -> str:
    from fraudrisk.data.fast import FastConfig
    from fraudrisk.data.simulate import fast_days
    from fraudrisk.features.state import states_as_of
    from fraudrisk.features.table import FeatureTable, features_of
    from fraudrisk.io.lake import Lake

    lake = Lake.open(str(home / "lake"))
    lake.init(EPOCH)
    config = FastConfig(CUSTOMERS, TERMINALS, nb_days=LAKE_DAYS + STREAM_DAYS)
    later = []
    for day, table in fast_days(config):
        if (day - EPOCH).days < LAKE_DAYS:
            lake.write_day(day, table)
        else:
            later.append(table.select(list(MESSAGE_COLUMNS)))
    stream = pa.concat_tables(later).sort_by(
        [("tx_datetime", "ascending"), ("transaction_id", "ascending")]
    )
    pq.write_table(stream, home / "stream.parquet")
    rows = lake.read(include_labels=True)
    columns, seconds, fraud = features_of(rows)
    table_uri = str(home / "features")
    table = FeatureTable.open(table_uri)
    table.write_day(EPOCH, pa.table(columns))
    for entity, state in states_as_of(rows, seconds, fraud).items():
        table.write_state(entity, state)
    return table_uri


def _online_store(home: Path, table_uri: str) -> None:
    from fraudrisk.features import feast_store

    settings = home_settings(home)
    with _quiet():
        feast_store.apply(settings, table_uri)
        feast_store.materialize(
            settings, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime.now(dt.UTC)
        )


def _champion(home: Path, table_uri: str) -> None:
    """The TUNED_56DAY recipe's XGBoost on the lake, calibrated, registered as champion."""
    from xgboost import XGBClassifier

    from fraudrisk.features.definitions import FEATURE_NAMES
    from fraudrisk.registry.versions import bootstrap_champion, register_model
    from fraudrisk.training.calibrate import calibrate
    from fraudrisk.training.dataset import load_frame
    from fraudrisk.training.gate import GateResult
    from fraudrisk.training.recipes import TUNED_56DAY
    from fraudrisk.training.thresholds import choose_thresholds

    settings = home_settings(home)
    frame = load_frame(table_uri, settings.lake_uri)
    names = list(FEATURE_NAMES)
    train = frame[frame["tx_time_days"] < LAKE_DAYS - 14]
    hold = frame[frame["tx_time_days"] >= LAKE_DAYS - 7]  # labels of the last week: calibration
    model = XGBClassifier(**TUNED_56DAY.params, random_state=0, n_jobs=1)
    model.fit(train[names].to_numpy(np.float32), train["tx_fraud"].to_numpy())
    calibrated = calibrate(model, hold[names].astype(np.float32), hold["tx_fraud"], "isotonic")
    risk = calibrated.predict_fraud_probability(hold[names].astype(np.float32))
    with _quiet():
        version = register_model(
            settings,
            calibrated,
            metrics={"average_precision": 0.0},
            artifacts={},
            params={"model": "xgboost", "recipe": "TUNED_56DAY", "purpose": "benchmark"},
            feature_names=names,
            input_example=hold[names].head(3).astype(np.float32),
            training_data_ref=f"{settings.lake_uri} (benchmark)",
            thresholds=choose_thresholds(hold["tx_fraud"], risk),
            gate_result=GateResult(passed=True),
            run_name="stream-benchmark",
        )
        bootstrap_champion(settings, version.version)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence stdout (Feast and MLflow print progress) while building."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


# ------------------------------------------------------------------------------ messages
def stream_rows(home: Path, n: int) -> pa.Table:
    """The first ``n`` transactions after the lake, in event-time order.

    Raises:
        ValueError: If fewer were simulated.
    """
    table = pq.read_table(home / "stream.parquet")
    if table.num_rows < n:
        raise ValueError(
            f"the benchmark home holds {table.num_rows:,} stream transactions, "
            f"{n:,} asked: lower --n or --rebuild with more STREAM_DAYS"
        )
    return table.slice(0, n)


def kafka_messages(rows: pa.Table) -> list[tuple[bytes, bytes]]:
    """(key, value) of each transaction: keyed by customer, the JSON the API produces."""
    out = []
    for row in rows.to_pylist():
        row["tx_datetime"] = row["tx_datetime"].isoformat()
        out.append((str(row["customer_id"]).encode(), orjson.dumps(row)))
    return out


# -------------------------------------------------------------------------------- broker
class Broker:
    """A Kafka broker (KRaft) on free loopback ports, stopped on exit, SIGTERM or Ctrl-C."""

    def __init__(self, work: Path) -> None:
        """The broker's data goes under ``work/kafka`` (wiped at start)."""
        self.data = work / "kafka"
        self.broker: Any = None
        self.bootstrap = ""

    def __enter__(self) -> Broker:
        from fraudrisk.io.kafka_broker import LocalKafkaBroker

        shutil.rmtree(self.data, ignore_errors=True)
        self.broker = LocalKafkaBroker()
        # SIGTERM as Ctrl-C: the finally blocks stop the subprocesses and this broker.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        with console.status("starting the Kafka broker (KRaft, loopback)"):
            self.bootstrap = self.broker.start(data_dir=self.data)
        console.print(f"Kafka broker at {self.bootstrap} (pid {self.broker.pid})")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.broker is not None:
            self.broker.stop()
            console.print("Kafka broker stopped")
        shutil.rmtree(self.data, ignore_errors=True)

    @property
    def pid(self) -> int:
        """The broker's process id."""
        return int(self.broker.pid)
