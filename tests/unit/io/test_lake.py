"""The lake: day partitions readable by pyarrow.dataset, atomic files, schema conformance."""

import datetime as dt

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from fraudrisk.io.lake import Lake, conform


def day_table(day: dt.date, first_id: int, n: int) -> pa.Table:
    start = dt.datetime.combine(day, dt.time(12))
    seconds = [int((start - dt.datetime(2018, 4, 1)).total_seconds()) + i for i in range(n)]
    return pa.table(
        {
            "transaction_id": list(range(first_id, first_id + n)),
            "tx_datetime": pa.array(
                [start + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp("us")
            ),
            "customer_id": [i % 7 for i in range(n)],
            "terminal_id": [i % 11 for i in range(n)],
            "tx_amount": [float(i) for i in range(n)],
            "tx_time_seconds": seconds,
            "tx_time_days": [s // 86_400 for s in seconds],
            "tx_fraud": [i % 2 for i in range(n)],
            "tx_fraud_scenario": [i % 2 for i in range(n)],
        }
    )


def test_partitions_are_hive_days_readable_by_pyarrow_dataset(tmp_path):
    lake = Lake.open(str(tmp_path))
    lake.init(dt.date(2018, 4, 1))
    for offset in range(3):
        day = dt.date(2018, 4, 1) + dt.timedelta(days=offset)
        lake.write_day(day, day_table(day, offset * 10, 10))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("dt=")) == [
        "dt=2018-04-01",
        "dt=2018-04-02",
        "dt=2018-04-03",
    ]
    plain = ds.dataset(str(tmp_path), format="parquet", partitioning="hive").to_table()
    assert plain.num_rows == 30 and "currency" in plain.column_names
    assert lake.read(dt.date(2018, 4, 2), dt.date(2018, 4, 2))[
        "transaction_id"
    ].to_pylist() == list(range(10, 20))


def test_scorer_view_has_no_labels_unless_asked(tmp_path):
    lake = Lake.open(str(tmp_path))
    lake.write_day(dt.date(2018, 4, 1), day_table(dt.date(2018, 4, 1), 0, 4))
    assert "tx_fraud" not in lake.read().column_names
    assert lake.read(include_labels=True)["tx_fraud"].to_pylist() == [0, 1, 0, 1]


def test_overwrite_replaces_and_append_adds(tmp_path):
    lake, day = Lake.open(str(tmp_path)), dt.date(2018, 4, 1)
    lake.init(day)
    lake.write_day(day, day_table(day, 0, 5))
    lake.write_day(day, day_table(day, 100, 3))
    assert lake.count_rows() == 3
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "_lake.json",
        "dt=2018-04-01",
        "part-0.parquet",
    ]  # no temporary files or folders left
    lake.write_day(day, day_table(day, 200, 2), mode="append")
    assert sorted(lake.read()["transaction_id"].to_pylist()) == [100, 101, 102, 200, 201]


def test_conform_rejects_unknown_and_missing_columns():
    table = day_table(dt.date(2018, 4, 1), 0, 2)
    with pytest.raises(ValueError, match="not in the lake schema"):
        conform(table.append_column("pan", pa.array(["x", "y"])))
    with pytest.raises(ValueError, match="'tx_amount' is missing"):
        conform(table.drop(["tx_amount"]))


def test_epoch_is_recorded_once(tmp_path):
    lake = Lake.open(str(tmp_path))
    assert lake.epoch() is None
    lake.init(dt.date(2018, 4, 1))
    lake.init(dt.date(2018, 4, 1))
    with pytest.raises(ValueError, match="epoch 2018-04-01"):
        lake.init(dt.date(2019, 1, 1))
