"""Feast with a real Redis online store: apply, materialize, look up, push."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import SecretStr

from fraudrisk.config import FeastSettings, Settings
from fraudrisk.features import feast_store
from fraudrisk.features.definitions import ALL_FEATURES, CUSTOMER_FEATURES, TERMINAL_FEATURES

pytestmark = pytest.mark.integration
EPOCH = dt.datetime(2018, 4, 1)


def write_feature_table(out: Path, n: int = 40) -> pd.DataFrame:
    """A feature table in the batch job's layout with plausible numbers; returns its rows."""
    rng = np.random.default_rng(1)
    seconds = np.sort(rng.choice(3 * 86_400, size=n, replace=False))
    frame = pd.DataFrame(
        {
            "transaction_id": np.arange(n, dtype=np.int64),
            "tx_datetime": (pd.Timestamp(EPOCH) + pd.to_timedelta(seconds, unit="s")).astype(
                "datetime64[us]"
            ),
            "customer_id": rng.integers(1, 6, n).astype(np.int64),
            "terminal_id": rng.integers(10, 15, n).astype(np.int64),
        }
    )
    for f in ALL_FEATURES:
        frame[f.name] = rng.integers(0, 9, n) if f.kind == "int" else rng.uniform(0, 100, n)
    for day, part in frame.groupby(frame["tx_datetime"].dt.date):
        (out / f"dt={day}").mkdir(parents=True)
        part.to_parquet(out / f"dt={day}" / "part-0.parquet", index=False)
    as_of = frame["tx_datetime"].max().to_pydatetime()
    for entity, extra in (
        ("customer", ("event_amounts", "event_terminals")),
        ("terminal", ("event_labels",)),
    ):
        rows = [
            {
                f"{entity}_id": int(key),
                "state_as_of": as_of,
                "event_seconds": [int(s) for s in g["tx_datetime"].astype("int64") // 10**6],
                "event_ids": g["transaction_id"].tolist(),
                **{
                    c: (
                        g["tx_amount"].tolist()
                        if c == "event_amounts"
                        else g["terminal_id"].tolist()
                        if c == "event_terminals"
                        else [-1] * len(g)
                    )
                    for c in extra
                },
            }
            for key, g in frame.groupby(f"{entity}_id")
        ]
        table = pa.Table.from_pylist(rows)
        table = table.set_column(1, "state_as_of", table["state_as_of"].cast(pa.timestamp("us")))
        (out / "_entity_state" / entity).mkdir(parents=True)
        pq.write_table(table, out / "_entity_state" / entity / "part-0.parquet")
    return frame


def test_apply_materialize_lookup_and_push_with_redis(redis_server, tmp_path):
    frame = write_feature_table(tmp_path / "features")
    settings = Settings(
        home=tmp_path / "home",
        feast=FeastSettings(
            repo_path=str(tmp_path / "repo"),
            online_store="redis",
            redis_connection_string=SecretStr(redis_server),
        ),
    )
    feast_store.apply(settings, str(tmp_path / "features"))
    assert "type: redis" in (tmp_path / "repo" / "feature_store.yaml").read_text()
    feast_store.materialize(settings, dt.datetime(2018, 3, 1, tzinfo=dt.UTC), None)

    customers = sorted(frame["customer_id"].unique().tolist())
    terminals = sorted(frame["terminal_id"].unique().tolist())
    got = feast_store.online_features(settings, customers, terminals)
    for row in got["customer"]:
        mine = frame[frame["customer_id"] == row["customer_id"]]
        latest = mine.iloc[-1]
        assert [row[n] for n in ("tx_amount", *CUSTOMER_FEATURES)] == pytest.approx(
            [latest[n] for n in ("tx_amount", *CUSTOMER_FEATURES)], abs=0
        )
        assert row["event_ids"] == mine["transaction_id"].tolist()
        assert row["event_amounts"] == mine["tx_amount"].tolist()
    for row in got["terminal"]:
        latest = frame[frame["terminal_id"] == row["terminal_id"]].iloc[-1]
        assert [row[n] for n in TERMINAL_FEATURES] == pytest.approx(
            [latest[n] for n in TERMINAL_FEATURES], abs=0
        )

    store = feast_store.get_store(settings)
    feast_store.push_entity_state(
        store,
        "customer",
        pd.DataFrame(
            {
                "customer_id": [1],
                "state_as_of": [pd.Timestamp("2030-01-01")],
                "event_seconds": [[5]],
                "event_ids": [[99]],
                "event_amounts": [[1.5]],
                "event_terminals": [[12]],
            }
        ),
    )
    (row,) = feast_store.lookup(store, "customer", [1])
    assert (row["event_ids"], row["event_amounts"]) == ([99], [1.5])
