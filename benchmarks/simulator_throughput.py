"""Simulator throughput: the fast generator beside the exact handbook preset, in one run.

Each case runs in a fresh subprocess (generation + atomic Parquet writes into a temporary lake)
and reports wall time, transactions per second, transactions per CPU-second (= per core, child
processes included) and peak resident memory. The handbook preset is the baseline.

Usage:
    python benchmarks/simulator_throughput.py            # handbook, fast x1, x10, 50M rows
    python benchmarks/simulator_throughput.py --no-large # skip the 50M-row case
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import textwrap
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

_CASE = textwrap.dedent(
    """
    import datetime as dt, json, resource, sys, time
    from fraudrisk.data.fast import FastConfig
    from fraudrisk.data.handbook import HandbookConfig
    from fraudrisk.data.simulate import fast_days, handbook_days, write_days
    from fraudrisk.io.lake import Lake
    kind, customers, terminals, days, out = sys.argv[1:6]
    lake = Lake.open(out)
    lake.init(dt.date(2018, 4, 1))
    wall, cpu = time.perf_counter(), time.process_time()
    if kind == "handbook":
        tables = handbook_days(HandbookConfig())
    else:
        tables = fast_days(FastConfig(int(customers), int(terminals), int(days)))
    result = write_days(lake, tables)
    wall = time.perf_counter() - wall
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu + children.ru_utime + children.ru_stime
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, children.ru_maxrss)
    print(json.dumps({"rows": result.rows, "frauds": result.frauds, "wall": wall, "cpu": cpu,
                      "peak_mib": peak / 1024}))
    """
)


def run_case(kind: str, customers: int, terminals: int, days: int) -> dict[str, float]:
    """Run one simulation in a fresh process and return its measurements."""
    with tempfile.TemporaryDirectory(prefix="fraudrisk-bench-") as out:
        args = [sys.executable, "-c", _CASE, kind, str(customers), str(terminals), str(days), out]
        done = subprocess.run(args, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-large", action="store_true", help="skip the 50M-row case")
    options = parser.parse_args()
    cases = [
        ("handbook preset (exact, baseline)", "handbook", 5_000, 10_000, 183),
        ("fast, handbook size", "fast", 5_000, 10_000, 183),
        ("fast, 10x customers", "fast", 50_000, 100_000, 183),
    ]
    if not options.no_large:
        cases.append(("fast, ~50M transactions", "fast", 140_500, 281_000, 183))
    console = Console(width=130)
    table = Table(title="Simulator throughput (generation + atomic Parquet lake writes)")
    for column in (
        "case",
        "rows",
        "fraud %",
        "wall s",
        "tx/s",
        "tx/CPU-s (per core)",
        "vs baseline",
        "peak MiB",
    ):
        table.add_column(column, justify="left" if column == "case" else "right")
    baseline = None
    for label, kind, customers, terminals, days in cases:
        console.print(f"running: {label} …")
        m = run_case(kind, customers, terminals, days)
        per_core = m["rows"] / m["cpu"]
        baseline = baseline or per_core
        table.add_row(
            label,
            f"{m['rows']:,.0f}",
            f"{100 * m['frauds'] / m['rows']:.3f}",
            f"{m['wall']:.1f}",
            f"{m['rows'] / m['wall']:,.0f}",
            f"{per_core:,.0f}",
            f"{per_core / baseline:.1f}x",
            f"{m['peak_mib']:,.0f}",
        )
    console.print(table)
    console.print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
