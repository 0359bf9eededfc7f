"""Online features of a batch: the kernel at the batch's rows only, beside the full kernel.

The stream scorer computes a batch's features over the batch *and* every stored event of its
customers and terminals (weeks of history). This times ``batch_features`` two ways on the same
batches and state, alternating them so that other work on the machine hits both alike:

* **full kernel** (before): the kernel computes every row, history included, and the batch's
  rows are kept (``kernel.customer_features`` / ``terminal_features`` called without
  ``targets``, then sliced);
* **targeted** (as shipped): the kernel sorts every row but computes the batch's rows only.

``--against-git REF`` adds a third path: ``inference/features.py`` and ``features/kernel.py``
as they are at a git commit (e.g. the one before the targeted kernel), loaded from ``git show``.

The state is the stream scorer's own (:class:`~fraudrisk.jobs.state_cache.StateCache`) fed the
first ``LAKE_DAYS`` days of the benchmark world (``stream_setup.py``: fast generator, 5,000
customers, 10,000 terminals, ~9,600 transactions a day) with their labels; the batches are the
transactions that follow, in time order, each merged into the state once measured, as the
scorer does. Every path's feature columns are checked equal (dtype and bits) on every batch.

The table gives medians of wall and CPU time (``time.thread_time``: numpy runs these on the
calling thread) and each path's speed-up as a ratio of CPU-time medians, which the other
processes of a shared machine disturb less than wall time. Compare ratios, not absolute times.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table

from fraudrisk.console import examples
from fraudrisk.data.fast import FastConfig
from fraudrisk.data.simulate import fast_days
from fraudrisk.features import kernel
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.jobs.batch_job import chunks, labels
from fraudrisk.jobs.decode import Decoded
from fraudrisk.jobs.state_cache import StateCache
from fraudrisk.scoring import vectors as features
from fraudrisk.scoring.state_reader import EntityStates
from fraudrisk.scoring.vectors import TransactionBatch
from stream_setup import CUSTOMERS, LAKE_DAYS, TERMINALS

REPO = Path(__file__).resolve().parents[1]
console = Console(width=130)
app = typer.Typer(add_completion=False, rich_markup_mode="rich")
Columns = dict[str, np.ndarray]
#: Fewer than the world simulates a day (~9,600): enough stream days for the batches wanted.
TRANSACTIONS_A_DAY = 8_000
DEFAULT_SIZES = [10_000, 1_000]
TARGETED = "targeted"


@contextlib.contextmanager
def full_kernel() -> Iterator[None]:
    """The path before targets: the kernel over every row, then the targets' rows kept."""
    wanted: dict[str, Callable[..., Columns]] = {
        "customer_features": kernel.customer_features,
        "terminal_features": kernel.terminal_features,
    }

    def every_row(function: Callable[..., Columns]) -> Callable[..., Columns]:
        def compute(*columns: np.ndarray, targets: np.ndarray | None = None) -> Columns:
            rows = function(*columns)
            return rows if targets is None else {k: v[targets] for k, v in rows.items()}

        return compute

    try:
        for name, function in wanted.items():
            setattr(kernel, name, every_row(function))
        yield
    finally:
        for name, function in wanted.items():
            setattr(kernel, name, function)


def code_at(ref: str) -> types.ModuleType:
    """``fraudrisk.scoring.vectors`` with its kernel as they are at git commit ``ref``."""
    loaded = {}
    for name, path in (
        ("kernel", "src/fraudrisk/features/kernel.py"),
        ("features", "src/fraudrisk/scoring/vectors.py"),
    ):
        shown = subprocess.run(
            ["git", "show", f"{ref}:{path}"], cwd=REPO, capture_output=True, text=True, check=False
        )
        if shown.returncode != 0:
            raise typer.BadParameter(f"cannot read {path} at {ref!r}: {shown.stderr.strip()}")
        module = types.ModuleType(f"at_{ref}_{name}")
        sys.modules[module.__name__] = module  # dataclasses look their module up
        exec(compile(shown.stdout, f"{ref}:{path}", "exec"), module.__dict__)
        loaded[name] = module
    loaded["features"].__dict__["kernel"] = loaded["kernel"]  # not the kernel it imported
    return loaded["features"]


def world(stream_days: int) -> tuple[StateCache, pa.Table]:
    """The scorer's state after ``LAKE_DAYS`` days, and the ``stream_days`` days that follow."""
    history: list[pa.Table] = []
    stream: list[pa.Table] = []
    config = FastConfig(CUSTOMERS, TERMINALS, nb_days=LAKE_DAYS + stream_days)
    cache = StateCache(None)
    with console.status("simulating the world and feeding the scorer's state cache"):
        for index, (_, table) in enumerate(fast_days(config)):
            (history if index < LAKE_DAYS else stream).append(table)
        for table in history:
            for piece in chunks(table, 10_000):
                cache.apply(Decoded(piece, [], []).batch())
                cache.apply_labels(labels(piece))
    later = pa.concat_tables(stream).sort_by(
        [("tx_datetime", "ascending"), ("transaction_id", "ascending")]
    )
    return cache, later


def feature_columns(module: Any, batch: TransactionBatch, states: EntityStates) -> Columns:
    """The batch's customer and terminal columns (float64/int64, before the float32 matrix)."""
    return dict(
        module._customer_columns(batch, states.customers)
        | module._terminal_columns(batch, states.terminals)
    )


def same(left: Columns, right: Columns) -> bool:
    """Same columns, dtypes and bits."""
    return list(left) == list(right) and all(
        left[k].dtype == right[k].dtype and np.array_equal(left[k], right[k]) for k in left
    )


Contender = tuple[str, Callable[[], contextlib.AbstractContextManager[None]], Any]


@dataclass
class Timings:
    """One batch size's measurements: seconds per call of each path, wall and CPU."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]
    agreed: bool = True
    stored_events: list[int] = field(default_factory=list)


def measure(
    cache: StateCache,
    stream: pa.Table,
    size: int,
    batches: int,
    repeats: int,
    paths: list[Contender],
) -> Timings:
    """Time ``batch_features`` of each path on consecutive batches, merging each afterwards."""
    timings = Timings({label: [] for label, _, _ in paths}, {label: [] for label, _, _ in paths})
    for index in range(batches):
        batch = Decoded(stream.slice(index * size, size), [], []).batch()
        states = cache.read(batch.customer_id.tolist(), batch.terminal_id.tolist())
        timings.stored_events.append(
            sum(len(c.event_ids) for c in states.customers.values())
            + sum(len(t.event_ids) for t in states.terminals.values())
        )
        reference = feature_columns(features, batch, states)
        for repeat in range(repeats + 1):  # the first round warms up, untimed
            rotation = paths[repeat % len(paths) :] + paths[: repeat % len(paths)]
            for label, mode, module in rotation:
                with mode():
                    wall, cpu = time.perf_counter(), time.thread_time()
                    module.batch_features(batch, states.customers, states.terminals, FEATURE_NAMES)
                    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
                    if repeat == 0:
                        timings.agreed &= same(reference, feature_columns(module, batch, states))
                    else:
                        timings.wall[label].append(wall)
                        timings.cpu[label].append(cpu)
        cache.apply(batch)
    return timings


def machine() -> str:
    """Date, cores, CPU model and load: the context of the numbers."""
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in text.splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = f"Python {platform.python_version()}, numpy {np.__version__}"
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · nproc {os.cpu_count()} · {model} · " + (
        f"load {load} · {versions}"
    )


def report(results: Mapping[int, Timings]) -> Table:
    """Medians per batch and per transaction; speed-ups are ratios of CPU-time medians."""
    labels = list(next(iter(results.values())).cpu)
    others = [label for label in labels if label != TARGETED]
    table = Table(
        title="batch_features: targeted kernel vs full kernel (medians)",
        caption="faster than X = X's median CPU time / this path's",
    )
    for column in (
        "batch",
        "events / batch",
        "path",
        "wall ms / batch",
        "CPU ms / batch",
        "CPU µs / tx",
        *(f"faster than {label}" for label in others),
        "identical",
    ):
        table.add_column(column, justify="left" if column == "path" else "right")
    for size, timings in results.items():
        cpu = {label: statistics.median(values) for label, values in timings.cpu.items()}
        for label in labels:
            table.add_row(
                f"{size:,}",
                f"{statistics.mean(timings.stored_events):,.0f}",
                label,
                f"{statistics.median(timings.wall[label]) * 1e3:.1f}",
                f"{cpu[label] * 1e3:.1f}",
                f"{cpu[label] / size * 1e6:.1f}",
                *(f"{cpu[other] / cpu[label]:.2f}x" for other in others),
                "yes" if timings.agreed else "[red]NO[/red]",
            )
        table.add_section()
    return table


@app.command(
    epilog=examples(
        "python benchmarks/online_features.py",
        "python benchmarks/online_features.py --repeats 9 --batches 5",
        "python benchmarks/online_features.py --against-git ad2eeb7",
    )
)
def main(
    sizes: Annotated[
        list[int] | None, typer.Option("--size", help="Batch size to time (repeatable).")
    ] = None,
    batches: Annotated[int, typer.Option(min=1, help="Consecutive batches per size.")] = 3,
    repeats: Annotated[int, typer.Option(min=1, help="Timed calls per path and batch.")] = 5,
    against_git: Annotated[
        str | None, typer.Option(help="Also time the code at this git commit (before/after).")
    ] = None,
) -> None:
    """Time the online feature computation of a batch: targeted kernel vs full kernel."""
    sizes = sizes or DEFAULT_SIZES
    if min(sizes) < 1:
        raise typer.BadParameter(f"batch sizes must be positive, got {sizes}")
    paths: list[Contender] = [
        ("full kernel", full_kernel, features),
        (TARGETED, contextlib.nullcontext, features),
    ]
    if against_git:
        paths.append((f"git {against_git}", contextlib.nullcontext, code_at(against_git)))
    cache, stream = world(stream_days=sum(sizes) * batches // TRANSACTIONS_A_DAY + 2)
    results = {}
    for size in sizes:
        console.print(f"timing batches of {size:,} ({batches} batches x {repeats} repeats) …")
        results[size] = measure(cache, stream, size, batches, repeats, paths)
        stream = stream.slice(size * batches)
    console.print(report(results))
    console.print(machine())
    if not all(timings.agreed for timings in results.values()):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
