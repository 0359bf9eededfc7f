"""`fraudrisk demo` (what `make demo` runs) on a fresh FRAUDRISK_HOME."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_lake_features_and_online_store(tmp_path):
    env = {**os.environ, "FRAUDRISK_HOME": str(tmp_path / "home"), "COLUMNS": "400"}
    done = subprocess.run(
        [sys.executable, "-m", "fraudrisk", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for expected in (
        "1,754,155",
        "14,681",
        "973",
        "9,077",
        "4,631",
        "all lake checks passed",
        "2018-04-01 → 2018-09-30",
    ):
        assert expected in out
    plot = tmp_path / "home" / "reports" / "daily_transactions.png"
    assert plot.read_bytes()[:4] == b"\x89PNG" and plot.stat().st_size > 30_000
    assert len(list((tmp_path / "home" / "lake").glob("dt=*"))) == 183
    assert len(list((tmp_path / "home" / "features").glob("dt=*"))) == 183
    assert (tmp_path / "home" / "feast" / "online.db").stat().st_size > 1_000_000
