"""The Feast repo: declarations, apply + materialize to SQLite, online look-ups, offline PIT."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fraudrisk.cli import features as features_cli
from fraudrisk.config import FeastSettings, Settings
from fraudrisk.features import feast_store
from fraudrisk.features.definitions import (
    CUSTOMER_FEATURES,
    FEATURE_NAMES,
    FEATURE_SET_VERSION,
    TERMINAL_FEATURES,
)
from fraudrisk.features.feast_repo import build_repo_objects
from fraudrisk.features.kernel import all_features

EPOCH = dt.datetime(2018, 4, 1)


def write_feature_table(out: Path, n_days: int = 3, seed: int = 0) -> pd.DataFrame:
    """A small feature table in the batch job's layout; returns its rows (one per transaction)."""
    rng = np.random.default_rng(seed)
    n = 12 * n_days
    seconds = np.sort(rng.choice(n_days * 86_400, size=n, replace=False)).astype(np.int64)
    customer = rng.integers(1, 5, n).astype(np.int64)
    terminal = rng.integers(10, 14, n).astype(np.int64)
    tx_id = np.arange(n, dtype=np.int64)
    amount = np.round(rng.uniform(1, 200, n), 2)
    fraud = (rng.uniform(size=n) < 0.2).astype(np.int64)
    feats = all_features(customer, terminal, seconds, tx_id, amount, fraud)
    frame = pd.DataFrame(
        {
            "transaction_id": tx_id,
            "tx_datetime": pd.to_datetime(EPOCH) + pd.to_timedelta(seconds, unit="s"),
            "customer_id": customer,
            "terminal_id": terminal,
            **{name: np.asarray(feats[name]) for name in FEATURE_NAMES},
        }
    )
    frame["tx_datetime"] = frame["tx_datetime"].astype("datetime64[us]")
    for day, part in frame.groupby(frame["tx_datetime"].dt.date):
        (out / f"dt={day}").mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False),
            out / f"dt={day}" / "part-00000.parquet",
        )
    as_of = frame["tx_datetime"].max()
    _write_state(
        out,
        "customer",
        frame,
        as_of,
        {"event_amounts": "tx_amount", "event_terminals": "terminal_id"},
    )
    _write_state(out, "terminal", frame, as_of, {"event_labels": None})
    (out / "_build.json").write_text(json.dumps({"as_of": as_of.isoformat()}))
    return frame


def _write_state(
    out: Path, entity: str, frame: pd.DataFrame, as_of: pd.Timestamp, extra: dict[str, str | None]
) -> None:
    rows = []
    for key, events in frame.groupby(f"{entity}_id"):
        row = {
            f"{entity}_id": int(key),
            "state_as_of": as_of,
            "event_seconds": [int(t.timestamp()) for t in events["tx_datetime"]],
            "event_ids": events["transaction_id"].tolist(),
        }
        for column, source in extra.items():
            row[column] = events[source].tolist() if source else [-1] * len(events)
        rows.append(row)
    table = pa.Table.from_pylist(rows)
    table = table.set_column(1, "state_as_of", table["state_as_of"].cast(pa.timestamp("us")))
    (out / "_entity_state" / entity).mkdir(parents=True)
    pq.write_table(table, out / "_entity_state" / entity / "part-00000.parquet")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path, pd.DataFrame]:
    """A feature table and a Feast repo over it, applied and materialized (SQLite online)."""
    root = tmp_path_factory.mktemp("feast")
    frame = write_feature_table(root / "features")
    settings = Settings(home=root / "home", feast=FeastSettings(repo_path=str(root / "repo")))
    feast_store.apply(settings, str(root / "features"))
    feast_store.materialize(settings, None, None)
    return settings, root / "features", frame


def test_objects_are_declared_in_feast_order_with_versioned_services(tmp_path):
    # deferred: feast (≈4 s) imported by the worker that runs these tests, not by every worker
    # collecting the module (both workers of `make test-fast` collect every file)
    from feast import Entity, FeatureService, FeatureView, FileSource, PushSource

    objects = build_repo_objects(str(tmp_path))
    order = (Entity, FileSource, PushSource, FeatureView, FeatureService)
    kinds = [next(i for i, k in enumerate(order) if isinstance(o, k)) for o in objects]
    assert kinds == sorted(kinds)
    assert [o.name for o in objects] == [
        "customer",
        "terminal",
        "transaction",
        "feature_table",
        "customer_state_batch",
        "terminal_state_batch",
        "customer_state_push",
        "terminal_state_push",
        "transaction_features",
        "customer_features",
        "terminal_features",
        "customer_state",
        "terminal_state",
        "fraud_scoring_v1",
        "online_state_v1",
    ]
    views = {o.name: o for o in objects if isinstance(o, FeatureView)}
    assert [f.name for f in views["customer_features"].features] == [
        "tx_amount",
        *CUSTOMER_FEATURES,
    ]
    assert [f.name for f in views["terminal_features"].features] == list(TERMINAL_FEATURES)
    assert all(f.description for v in views.values() for f in v.features)


def test_scoring_service_lists_exactly_the_feature_names(tmp_path):
    from feast import FeatureService  # deferred: feast (≈4 s), as in the test above

    services = {
        o.name: o for o in build_repo_objects(str(tmp_path)) if isinstance(o, FeatureService)
    }
    scoring = services[f"fraud_scoring_{FEATURE_SET_VERSION}"]
    (projection,) = scoring.feature_view_projections
    assert projection.name == "transaction_features"
    assert [f.name for f in projection.features] == list(FEATURE_NAMES)
    assert scoring.tags["feature_set_version"] == FEATURE_SET_VERSION
    assert FEATURE_SET_VERSION in scoring.description
    state = services[f"online_state_{FEATURE_SET_VERSION}"]
    assert [p.name for p in state.feature_view_projections] == ["customer_state", "terminal_state"]


def test_apply_writes_a_feature_store_yaml_for_the_feast_cli(repo):
    settings, _, _ = repo
    text = (settings.feast_repo_path / "feature_store.yaml").read_text()
    assert "project: fraudrisk" in text and "type: sqlite" in text and "type: file" in text
    assert (settings.feast_repo_path / "registry.db").exists()


def test_online_features_are_each_entitys_latest_row(repo):
    settings, _, frame = repo
    customers = sorted(frame["customer_id"].unique().tolist())
    terminals = sorted(frame["terminal_id"].unique().tolist())
    got = feast_store.online_features(settings, customers, terminals)
    for row in got["customer"]:
        latest = frame[frame["customer_id"] == row["customer_id"]].iloc[-1]
        for name in ("tx_amount", *CUSTOMER_FEATURES):
            assert row[name] == pytest.approx(latest[name], abs=0), name
    for row in got["terminal"]:
        latest = frame[frame["terminal_id"] == row["terminal_id"]].iloc[-1]
        assert [row[n] for n in TERMINAL_FEATURES] == pytest.approx(
            [latest[n] for n in TERMINAL_FEATURES], abs=0
        )


def test_entity_state_round_trips_exactly(repo):
    settings, table, _ = repo
    got = feast_store.online_features(settings, [1, 2, 3, 4], [10, 11, 12, 13])
    for entity, key in (("customer", "customer_id"), ("terminal", "terminal_id")):
        state = pq.read_table(table / "_entity_state" / entity).to_pylist()
        expected = {r[key]: r for r in state}
        for row in got[entity]:
            columns = [c for c in row if c.startswith("event_")]
            assert columns and {c: row[c] for c in columns} == {
                c: expected[row[key]][c] for c in columns
            }


def test_unknown_entity_has_no_values(repo):
    settings, _, _ = repo
    (row,) = feast_store.online_features(settings, [999], None)["customer"]
    assert row["customer_id"] == 999 and row["tx_amount"] is None and row["event_ids"] is None


def test_historical_features_are_point_in_time_by_transaction(repo):
    settings, _, frame = repo
    entity_df = frame[["transaction_id"]].assign(
        event_timestamp=frame["tx_datetime"].dt.tz_localize("UTC")
    )
    store = feast_store.get_store(settings)
    got = (
        store.get_historical_features(
            entity_df=entity_df,
            features=store.get_feature_service(f"fraud_scoring_{FEATURE_SET_VERSION}"),
        )
        .to_df()
        .sort_values("transaction_id")
        .reset_index(drop=True)
    )
    assert len(got) == len(frame)
    pd.testing.assert_frame_equal(
        got[list(FEATURE_NAMES)], frame[list(FEATURE_NAMES)], check_dtype=False
    )


def test_pushed_state_overrides_the_batch_state(repo):
    settings, _, _ = repo
    store = feast_store.get_store(settings)
    pushed = pa.table(
        {
            "terminal_id": pa.array([77], pa.int64()),
            "state_as_of": pa.array([dt.datetime(2030, 1, 1)], pa.timestamp("us")),
            "event_seconds": [[1, 2]],
            "event_ids": [[7, 8]],
            "event_labels": [[0, 1]],
        }
    )
    feast_store.push_entity_state(store, "terminal", pushed)
    (row,) = feast_store.lookup(store, "terminal", [77])
    assert (row["event_seconds"], row["event_ids"], row["event_labels"]) == ([1, 2], [7, 8], [0, 1])


def test_cli_lookup_prints_the_online_values(repo, monkeypatch):
    settings, _, frame = repo
    monkeypatch.setattr("fraudrisk.cli.features.get_settings", lambda: settings)
    app = features_cli.app
    customer = int(frame["customer_id"].iloc[0])
    result = CliRunner().invoke(app, ["lookup", "--customer", str(customer)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "customer_id_nb_tx_1day_window" in result.output and str(customer) in result.output
