"""The lake: day partitions readable by pyarrow.dataset, atomic files, schema conformance."""

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
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


_CRASHING_WRITER = textwrap.dedent("""
    import os, sys, pyarrow as pa
    from fraudrisk.io.storage import open_storage
    storage = open_storage(sys.argv[1])
    data = b"PAR1" + os.urandom(4_000_000) + b"PAR1"
    real_open = storage.fs.open_output_stream

    class DiesHalfway:
        def __init__(self, stream): self.stream = stream
        def __enter__(self): return self
        def __exit__(self, *exc): self.stream.close()
        def write(self, chunk):
            self.stream.write(chunk[: len(chunk) // 2]); self.stream.flush()
            os._exit(9)  # a crash: no cleanup, no finally blocks

    fs = storage.fs
    object.__setattr__(storage, "fs", type("F", (), {
        "__getattr__": lambda self, name: getattr(fs, name),
        "open_output_stream": lambda self, path: DiesHalfway(real_open(path)),
    })())
    if sys.argv[2] == "atomic":
        storage.write_bytes_atomic("dt=2018-04-01/part-0.parquet", data)
    else:  # negative control: write straight to the target
        with storage.fs.open_output_stream(storage.path("dt=2018-04-01/part-0.parquet")) as out:
            out.write(data)
""")


@pytest.mark.parametrize("mode", ["atomic", "direct"])
def test_a_crash_mid_write_never_leaves_half_a_partition(tmp_path, mode):
    lake = Lake.open(str(tmp_path))
    day = dt.date(2018, 4, 1)
    lake.write_day(day, day_table(day, 0, 50))
    before = lake.read()
    done = subprocess.run(
        [sys.executable, "-c", _CRASHING_WRITER, str(tmp_path), mode],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 9, done.stderr
    target = tmp_path / "dt=2018-04-01" / "part-0.parquet"
    if mode == "atomic":
        assert lake.read().equals(before)  # the old partition, whole
        assert pq.read_table(target).num_rows == 50
    else:  # the negative control shows the check can fail: the target is half written
        assert os.path.getsize(target) < 4_000_008
        with pytest.raises(pa.ArrowInvalid):
            lake.read()
