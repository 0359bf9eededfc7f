"""A writer killed half-way (a child process) never leaves half a partition."""

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.unit.io.test_lake import day_table

from fraudrisk.io.lake import Lake

pytestmark = pytest.mark.integration


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
