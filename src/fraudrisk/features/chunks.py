"""Time chunks of the batch feature job: whole days plus the history ("halo") they need.

Every feature looks back at most 37 days, so a chunk of days can be computed alone from its
own days and the 37 days before them. Chunks are balanced by the rows a task reads (its days
plus halo): the first chunk has no halo and gets more days.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from fraudrisk.features.definitions import DAY, TERMINAL_HORIZON_SECONDS

HALO_DAYS = TERMINAL_HORIZON_SECONDS // DAY  # 37: the longest look-back, in whole days


@dataclass(frozen=True)
class Chunk:
    """Days ``first..last`` (inclusive) computed from rows of ``read_from..last``."""

    index: int
    first: dt.date
    last: dt.date
    read_from: dt.date
    is_last: bool


def plan_chunks(
    first_day: dt.date,
    last_day: dt.date,
    rows: int,
    parallelism: int,
    max_rows: int = 6_000_000,
) -> list[Chunk]:
    """Split the lake's days into chunks: at least one per core, each task's rows bounded.

    Args:
        first_day: The lake's first day.
        last_day: The lake's last day.
        rows: Transactions in the lake (to bound a task's memory).
        parallelism: Cores (tasks that run at once).
        max_rows: Bound on the rows one task reads (own days + halo).
    """
    n_days = (last_day - first_day).days + 1
    wanted = max(parallelism, math.ceil(rows * (1 + HALO_DAYS / n_days) / max_rows), 1)
    count = min(wanted, n_days)
    while count > 1 and _later_days(n_days, count) < 1:
        count -= 1  # chunks so short that the halo would dominate: fewer, longer chunks
    sizes = [n_days] if count == 1 else _sizes(n_days, count)
    chunks, start = [], first_day
    for index, size in enumerate(sizes):
        last = start + dt.timedelta(days=size - 1)
        read_from = max(first_day, start - dt.timedelta(days=HALO_DAYS))
        chunks.append(Chunk(index, start, last, read_from, index == len(sizes) - 1))
        start = last + dt.timedelta(days=1)
    return chunks


def _later_days(n_days: int, count: int) -> int:
    """Own days of every chunk after the first, when all read the same number of days."""
    per_task = (n_days + (count - 1) * HALO_DAYS) / count
    return math.floor(per_task - HALO_DAYS)


def _sizes(n_days: int, count: int) -> list[int]:
    later = _later_days(n_days, count)
    first = n_days - later * (count - 1)
    return [first] + [later] * (count - 1)
