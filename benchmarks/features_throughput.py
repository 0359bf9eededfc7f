"""Feature throughput: the Spark feature build beside the handbook-style pandas baseline.

Both cases read the same lake and run in a fresh process each, timed from the outside (wall
seconds, interpreter and Spark start-up included):

* pandas — ``fraudrisk.features.handbook_pandas.reference_features``, the handbook's per-entity
  ``groupby`` + time-based ``rolling`` (one process, one core), lake read and one Parquet
  write included;
* Spark — the whole command ``fraudrisk features build --lake LAKE --out OUT`` (start-up,
  shuffle, quality checks, atomic day files, entity state and manifest included).

Targets: Spark <= 15 s on the handbook lake and >= 3x the pandas baseline. ``--large`` adds a
~50M-transaction lake built by Spark only (pandas cannot hold it). Peak memory is the largest
resident size of the case's process tree (JVM and Python workers summed), sampled with psutil.

Usage:
    python benchmarks/features_throughput.py                  # simulates the handbook lake first
    python benchmarks/features_throughput.py --lake data/lake # an existing handbook lake
    python benchmarks/features_throughput.py --large          # + 50M transactions, Spark only
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.table import Table

SPARK_TARGET_SECONDS = 15.0
SPEEDUP_TARGET = 3.0
LARGE_SCALE = ["--customers", "140500", "--terminals", "281000", "--days", "183"]

_PANDAS_CASE = textwrap.dedent(
    """
    import json, sys, time
    from fraudrisk.features.handbook_pandas import reference_features
    from fraudrisk.io.lake import Lake
    lake, out = sys.argv[1:3]
    began = time.perf_counter()
    df = Lake.open(lake).read(include_labels=True).to_pandas()
    read = time.perf_counter()
    features = reference_features(df)
    done = time.perf_counter()
    features.to_parquet(out + "/features.parquet", index=False)
    print(json.dumps({"rows": len(features), "read": read - began, "features": done - read,
                      "write": time.perf_counter() - done}))
    """
)


@dataclass
class Run:
    """What one case measured."""

    wall: float
    peak_mib: float | None
    stdout: str


class _PeakSampler(threading.Thread):
    """Samples the summed resident memory of a process tree until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.available = pid, 0, True
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            import psutil
        except ImportError:
            self.available = False
            return
        while not self._stop_event.wait(0.2):
            try:
                root = psutil.Process(self.pid)
                tree = [root, *root.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree if p.is_running())
            except psutil.Error:
                continue
            self.peak = max(self.peak, rss)

    def stop(self) -> float | None:
        self._stop_event.set()
        self.join()
        return self.peak / 2**20 if self.available and self.peak else None


def run_timed(args: list[str], what: str) -> Run:
    """Run a command in a fresh process; exit with its output if it fails."""
    began = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = _PeakSampler(process.pid)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - began
    peak = sampler.stop()
    if process.returncode != 0:
        failure = subprocess.CalledProcessError(process.returncode, args, stdout, stderr)
        _explain_failure(what, failure)
    return Run(wall, peak, stdout)


def _explain_failure(what: str, failure: subprocess.CalledProcessError) -> NoReturn:
    console = Console(width=130, stderr=True)
    console.print(f"[bold red]{what} failed[/] (exit {failure.returncode}): {failure.cmd}")
    tail = "\n".join((failure.stderr or failure.stdout or "").strip().splitlines()[-25:])
    console.print(tail, markup=False, highlight=False)
    if "No such command" in (failure.stderr or ""):
        console.print("this install has no `fraudrisk features build` command yet")
    raise SystemExit(1)


def fraudrisk_command(*args: str) -> list[str]:
    """``python -m fraudrisk ARGS`` with this interpreter."""
    return [sys.executable, "-m", "fraudrisk", *args]


def simulate(out: Path, scale: list[str] | None) -> None:
    """Simulate a lake: the handbook preset, or the fast generator at ``scale``."""
    options = scale if scale is not None else ["--preset", "handbook"]
    run_timed(fraudrisk_command("simulate", *options, "--out", str(out)), f"simulate {options}")


def lake_rows(lake: str) -> int:
    """Transactions in the lake."""
    from fraudrisk.io.lake import Lake

    return Lake.open(lake).count_rows()


def run_pandas(lake: str, work: Path) -> tuple[Run, dict[str, float]]:
    """The handbook-style pandas reference over the whole lake, in a fresh process."""
    out = work / "pandas-features"
    out.mkdir()
    run = run_timed([sys.executable, "-c", _PANDAS_CASE, lake, str(out)], "pandas reference")
    return run, dict(json.loads(run.stdout.strip().splitlines()[-1]))


def run_spark(lake: str, out: Path, spark_args: list[str]) -> Run:
    """The whole ``fraudrisk features build`` command, Spark start-up included."""
    args = fraudrisk_command("features", "build", "--lake", lake, "--out", str(out), *spark_args)
    return run_timed(args, "fraudrisk features build")


def _spark_args(options: argparse.Namespace) -> list[str]:
    args = ["--master", options.master] if options.master else []
    for setting in options.conf:
        args += ["--conf", setting]
    return args


def _mib(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else "n/a"


def _table() -> Table:
    table = Table(title="Feature throughput: 19 features per transaction, lake → feature table")
    table.add_column("case")
    for column in ("rows", "wall s", "tx/s", "vs pandas", "peak MiB"):
        table.add_column(column, justify="right")
    table.add_column("target")
    return table


def _verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"


def _add_handbook(
    console: Console, table: Table, lake: str, work: Path, spark: list[str]
) -> list[str]:
    rows = lake_rows(lake)
    console.print(f"running: pandas reference on {rows:,} transactions …")
    pandas_run, parts = run_pandas(lake, work)
    console.print("running: fraudrisk features build (Spark) on the same lake …")
    spark_run = run_spark(lake, work / "spark-features", spark)
    speedup = pandas_run.wall / spark_run.wall
    split = (
        f"read {parts['read']:.1f} + features {parts['features']:.1f} + write {parts['write']:.1f}"
    )
    table.add_row(
        "handbook: pandas (baseline)",
        f"{rows:,}",
        f"{pandas_run.wall:.1f}",
        f"{rows / pandas_run.wall:,.0f}",
        "1.0x",
        _mib(pandas_run.peak_mib),
        "",
    )
    targets = (
        f"≤ {SPARK_TARGET_SECONDS:.0f} s {_verdict(spark_run.wall <= SPARK_TARGET_SECONDS)}, "
        f"≥ {SPEEDUP_TARGET:.0f}x {_verdict(speedup >= SPEEDUP_TARGET)}"
    )
    table.add_row(
        "handbook: Spark build",
        f"{rows:,}",
        f"{spark_run.wall:.1f}",
        f"{rows / spark_run.wall:,.0f}",
        f"{speedup:.1f}x",
        _mib(spark_run.peak_mib),
        targets,
    )
    return [
        f"pandas: one process, one core; {split} s (interpreter start-up is the rest)",
        "Spark: the whole `fraudrisk features build` command, JVM start-up, quality checks, "
        "entity state and manifest included",
    ]


def _add_large(console: Console, table: Table, work: Path, spark: list[str]) -> list[str]:
    console.print("simulating the ~50M-transaction lake (fast generator) …")
    simulate(work / "large-lake", LARGE_SCALE)
    lake = str(work / "large-lake")
    rows = lake_rows(lake)
    table.add_row(
        "~50M: pandas",
        f"{rows:,}",
        "not run",
        "—",
        "—",
        "—",
        "",
    )
    console.print(f"running: fraudrisk features build (Spark) on {rows:,} transactions …")
    spark_run = run_spark(lake, work / "large-features", spark)
    table.add_row(
        "~50M: Spark build",
        f"{rows:,}",
        f"{spark_run.wall:.1f}",
        f"{rows / spark_run.wall:,.0f}",
        "—",
        _mib(spark_run.peak_mib),
        "",
    )
    return [
        "~50M pandas: not run — 50M rows x 19 features in one frame (> 10 GB) plus per-group "
        "copies do not fit one process (and ~15 min at the rate above)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", help="an existing handbook lake (default: simulate one)")
    parser.add_argument("--large", action="store_true", help="add a ~50M-row lake, Spark only")
    parser.add_argument("--master", help="Spark master URL passed to features build")
    parser.add_argument("--conf", action="append", default=[], help="Spark key=value (repeat)")
    options = parser.parse_args()
    console = Console(width=130)
    table = _table()
    with tempfile.TemporaryDirectory(prefix="fraudrisk-bench-") as tmp:
        work = Path(tmp)
        lake = options.lake
        if lake is None:
            console.print("simulating the handbook lake (--preset handbook) …")
            simulate(work / "lake", None)
            lake = str(work / "lake")
        notes = _add_handbook(console, table, lake, work, _spark_args(options))
        if options.large:
            notes += _add_large(console, table, work, _spark_args(options))
    console.print(table)
    for note in notes:
        console.print(f"  {note}")
    console.print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
