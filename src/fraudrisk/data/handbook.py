"""The handbook preset: the published benchmark dataset, reproduced row for row.

Follows §1 of ``docs/handbook-benchmark.md`` draw for draw: numpy's legacy
``RandomState`` and Python's ``random`` with the same seeds, called in the same order as the
book's generator. Customers are seeded one by one, so they are generated in parallel worker
processes without changing a single draw; the fraud scenarios are applied afterwards exactly
as the book does (S1, then S2, then S3, a later one overwriting the scenario label).
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudrisk.data.profiles import Profiles, reachable_terminals_exact

SECONDS_PER_DAY = 86_400
ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class HandbookConfig:
    """Parameters of the handbook generator (the defaults are the published dataset's)."""

    n_customers: int = 5_000
    n_terminals: int = 10_000
    nb_days: int = 183
    start_date: dt.date = dt.date(2018, 4, 1)
    radius: float = 5.0
    customer_seed: int = 0
    terminal_seed: int = 1


def customer_profiles(n_customers: int, seed: int) -> np.ndarray:
    """Draw customer profiles: columns x, y, mean_amount, mean_nb_tx_per_day.

    The book draws four uniforms per customer in this order from one seeded stream; one
    vectorised draw of shape (n, 4) consumes the stream identically.
    """
    rng = np.random.RandomState(seed)
    return rng.uniform(low=[0, 0, 5, 0], high=[100, 100, 100, 4], size=(n_customers, 4))


def terminal_profiles(n_terminals: int, seed: int) -> np.ndarray:
    """Draw terminal locations: columns x, y."""
    rng = np.random.RandomState(seed)
    return rng.uniform(0, 100, size=(n_terminals, 2))


def build_profiles(config: HandbookConfig) -> Profiles:
    """Customer and terminal profiles with each customer's reachable terminals."""
    customers = customer_profiles(config.n_customers, config.customer_seed)
    terminals = terminal_profiles(config.n_terminals, config.terminal_seed)
    offsets, terminal_ids = reachable_terminals_exact(customers[:, :2], terminals, config.radius)
    return Profiles(customers, terminals, offsets, terminal_ids)


def customer_transactions(
    customer_id: int, mean_amount: float, mean_nb_tx: float, reachable: list[int], nb_days: int
) -> list[tuple[int, int, int, float]]:
    """One customer's transactions as (tx_time_seconds, day, terminal_id, amount), in draw order.

    This is the book's per-customer loop, draw for draw.
    """
    rng = np.random.RandomState(customer_id)
    choice = random.Random(customer_id).choice
    poisson, normal, uniform = rng.poisson, rng.normal, rng.uniform
    std_amount = mean_amount / 2
    rows: list[tuple[int, int, int, float]] = []
    for day in range(nb_days):
        for _ in range(poisson(mean_nb_tx)):
            time_tx = int(normal(SECONDS_PER_DAY / 2, 20_000))
            if not 0 < time_tx < SECONDS_PER_DAY:
                continue
            amount = normal(mean_amount, std_amount)
            if amount < 0:
                amount = uniform(0, mean_amount * 2)
            amount = float(np.round(amount, decimals=2))
            if reachable:
                rows.append((time_tx + day * SECONDS_PER_DAY, day, choice(reachable), amount))
    return rows


def _generate_chunk(
    args: tuple[int, int, np.ndarray, np.ndarray, np.ndarray, int],
) -> np.ndarray:
    first, last, customers, offsets, terminal_ids, nb_days = args
    out: list[tuple[int, int, int, int, float]] = []
    for cid in range(first, last):
        reachable = terminal_ids[offsets[cid] : offsets[cid + 1]].tolist()
        rows = customer_transactions(
            cid, float(customers[cid, 2]), float(customers[cid, 3]), reachable, nb_days
        )
        out.extend((t, d, cid, term, amt) for t, d, term, amt in rows)
    return np.array(out, dtype=np.float64).reshape(-1, 5)


def generate_raw(
    profiles: Profiles,
    nb_days: int,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> pd.DataFrame:
    """All customers' transactions concatenated in customer order (before sorting)."""
    n = len(profiles.customers)
    chunk = 100
    tasks = [
        (s, min(s + chunk, n), profiles.customers, profiles.offsets, profiles.terminal_ids, nb_days)
        for s in range(0, n, chunk)
    ]
    workers = workers or min(len(tasks), os.cpu_count() or 1)
    parts: list[np.ndarray] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for (first, last, *_), part in zip(tasks, pool.map(_generate_chunk, tasks), strict=True):
            parts.append(part)
            if progress:
                progress(last - first)
    raw = np.concatenate(parts) if parts else np.empty((0, 5))
    return pd.DataFrame(
        {
            "TX_TIME_SECONDS": raw[:, 0].astype(np.int64),
            "TX_TIME_DAYS": raw[:, 1].astype(np.int64),
            "CUSTOMER_ID": raw[:, 2].astype(np.int64),
            "TERMINAL_ID": raw[:, 3].astype(np.int64),
            "TX_AMOUNT": raw[:, 4],
        }
    )


def assemble(raw: pd.DataFrame, start_date: dt.date) -> pd.DataFrame:
    """Add TX_DATETIME, sort it the book's way and number the transactions.

    The book sorts with pandas' default (unstable) sort on the datetime column; ties between
    same-second transactions are ordered by that algorithm, so we use the very same call.
    """
    df = raw.copy()
    df["TX_DATETIME"] = pd.to_datetime(
        df["TX_TIME_SECONDS"], unit="s", origin=pd.Timestamp(start_date)
    )
    df = df[
        [
            "TX_DATETIME",
            "CUSTOMER_ID",
            "TERMINAL_ID",
            "TX_AMOUNT",
            "TX_TIME_SECONDS",
            "TX_TIME_DAYS",
        ]
    ]
    df = df.sort_values("TX_DATETIME").reset_index(drop=True)
    df.insert(0, "TRANSACTION_ID", np.arange(len(df), dtype=np.int64))
    return df
