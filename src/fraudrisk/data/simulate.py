"""Simulate transactions into the lake: the exact handbook preset or the fast generator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fraudrisk.data.fast import FastConfig, FastSimulator
from fraudrisk.data.handbook import HandbookConfig, assemble, build_profiles, generate_raw
from fraudrisk.data.scenarios import apply_handbook_scenarios
from fraudrisk.io.lake import Lake

DayTables = Iterator[tuple[dt.date, pa.Table]]
Advance = Callable[[int], None]


def handbook_frame(config: HandbookConfig, on_customers: Advance | None = None) -> pa.Table:
    """The whole handbook dataset as one Arrow table in lake columns, sorted chronologically."""
    profiles = build_profiles(config)
    df = assemble(generate_raw(profiles, config.nb_days, progress=on_customers), config.start_date)
    amount, fraud, scenario = apply_handbook_scenarios(
        df["TX_TIME_DAYS"].to_numpy(),
        df["CUSTOMER_ID"].to_numpy(),
        df["TERMINAL_ID"].to_numpy(),
        df["TX_AMOUNT"].to_numpy(),
        profiles,
    )
    return pa.table(
        {
            "transaction_id": df["TRANSACTION_ID"].to_numpy(),
            "tx_datetime": df["TX_DATETIME"].to_numpy().astype("datetime64[us]"),
            "customer_id": df["CUSTOMER_ID"].to_numpy(),
            "terminal_id": df["TERMINAL_ID"].to_numpy(),
            "tx_amount": amount,
            "tx_time_seconds": df["TX_TIME_SECONDS"].to_numpy(),
            "tx_time_days": df["TX_TIME_DAYS"].to_numpy().astype(np.int32),
            "tx_fraud": fraud,
            "tx_fraud_scenario": scenario,
        }
    )


def split_by_day(table: pa.Table, start_date: dt.date) -> DayTables:
    """Yield one table per ``tx_time_days`` value of a chronologically sorted table."""
    days = table["tx_time_days"].to_numpy()
    bounds = np.flatnonzero(np.diff(days)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(days)]])
    for first, last in zip(starts, ends, strict=True):
        if last > first:
            day = start_date + dt.timedelta(days=int(days[first]))
            yield day, table.slice(int(first), int(last - first))


def handbook_days(config: HandbookConfig, on_customers: Advance | None = None) -> DayTables:
    """Day tables of the handbook preset (the whole set is generated first, ~2 s per core)."""
    return split_by_day(handbook_frame(config, on_customers), config.start_date)


def fast_days(config: FastConfig) -> DayTables:
    """Day tables of the fast generator, produced one day at a time."""
    return FastSimulator(config).days()


@dataclass(frozen=True)
class WriteResult:
    """What a simulation wrote into the lake."""

    rows: int
    frauds: int
    days: int


def write_days(lake: Lake, days: DayTables, on_day: Advance | None = None) -> WriteResult:
    """Write day tables into the lake, one atomic partition each (existing days replaced)."""
    rows = frauds = n_days = 0
    for day, table in days:
        lake.write_day(day, table, mode="overwrite")
        rows += table.num_rows
        frauds += int(np.sum(table["tx_fraud"].to_numpy()))
        n_days += 1
        if on_day:
            on_day(table.num_rows)
    return WriteResult(rows=rows, frauds=frauds, days=n_days)
