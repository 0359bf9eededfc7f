"""Check a lake's integrity and summarise it for people: counts, frauds per scenario, a plot."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rich.table import Table

from fraudrisk.console import console, err_console
from fraudrisk.io.lake import Lake

_SUMMARY_COLUMNS = [
    "transaction_id",
    "tx_datetime",
    "tx_amount",
    "tx_time_seconds",
    "tx_time_days",
    "tx_fraud",
    "tx_fraud_scenario",
]
_MAX_PROBLEMS_PER_KIND = 5


@dataclass
class LakeReport:
    """Integrity problems found and per-day aggregates of a lake."""

    daily: pd.DataFrame
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the lake passed every check."""
        return not self.problems

    @property
    def rows(self) -> int:
        """Number of transactions."""
        return int(self.daily["transactions"].sum())

    @property
    def frauds(self) -> int:
        """Number of fraudulent transactions."""
        return int(self.daily["frauds"].sum())

    def frauds_by_scenario(self) -> dict[int, int]:
        """Fraud counts per scenario label (0 = genuine is excluded)."""
        cols = [c for c in self.daily.columns if c.startswith("scenario_")]
        return {int(c.removeprefix("scenario_")): int(self.daily[c].sum()) for c in sorted(cols)}


def inspect_lake(lake: Lake) -> LakeReport:
    """Read the lake partition by partition, check it and aggregate per day.

    Checks: each row lies in its partition's day, ``tx_time_seconds``/``tx_time_days`` agree
    with ``tx_datetime`` and the lake epoch, amounts are finite and >= 0, labels are 0/1, and
    transaction ids are unique across the lake.
    """
    epoch = lake.epoch()
    problems: list[str] = [] if epoch else ["lake has no _lake.json (epoch unknown)"]
    rows: list[dict[str, object]] = []
    ids: list[np.ndarray] = []
    for day, table in lake.iter_days(columns=_SUMMARY_COLUMNS):
        problems += _check_day(day, table, epoch)
        ids.append(table["transaction_id"].to_numpy())
        rows.append(_aggregate_day(day, table))
    all_ids = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    duplicates = len(all_ids) - len(np.unique(all_ids))
    if duplicates:
        problems.append(f"{duplicates} duplicate transaction ids across partitions")
    daily = (
        pd.DataFrame(rows).fillna(0)
        if rows
        else pd.DataFrame(columns=["day", "transactions", "frauds"])
    )
    return LakeReport(daily=daily, problems=problems)


def _check_day(day: dt.date, table: pa.Table, epoch: dt.date | None) -> list[str]:
    found: list[str] = []
    dates = pc.cast(table["tx_datetime"], pa.date32()).to_numpy(zero_copy_only=False)
    if (bad := int(np.sum(dates != np.datetime64(day)))) > 0:
        found.append(f"dt={day}: {bad} rows dated another day")
    amount = table["tx_amount"].to_numpy()
    if (bad := int(np.sum(~np.isfinite(amount) | (amount < 0)))) > 0:
        found.append(f"dt={day}: {bad} amounts negative or not finite")
    fraud = table["tx_fraud"].to_numpy(zero_copy_only=False)
    if (bad := int(np.sum(~np.isin(fraud, [0, 1])))) > 0:
        found.append(f"dt={day}: {bad} labels not 0/1")
    if epoch is not None:
        seconds = table["tx_time_seconds"].to_numpy()
        stamps = table["tx_datetime"].to_numpy()
        expected = (stamps - np.datetime64(epoch, "us")) // np.timedelta64(1, "s")
        if (bad := int(np.sum(seconds != expected))) > 0:
            found.append(f"dt={day}: {bad} tx_time_seconds disagree with tx_datetime")
        if (bad := int(np.sum(table["tx_time_days"].to_numpy() != seconds // 86_400))) > 0:
            found.append(f"dt={day}: {bad} tx_time_days disagree with tx_time_seconds")
    return found[:_MAX_PROBLEMS_PER_KIND]


def _aggregate_day(day: dt.date, table: pa.Table) -> dict[str, object]:
    fraud = table["tx_fraud"].to_numpy(zero_copy_only=False)
    scenario = table["tx_fraud_scenario"].to_numpy(zero_copy_only=False)
    row: dict[str, object] = {
        "day": day,
        "transactions": table.num_rows,
        "frauds": int(np.sum(fraud == 1)),
        "amount": float(np.sum(table["tx_amount"].to_numpy())),
    }
    for label, count in zip(*np.unique(scenario[fraud == 1], return_counts=True), strict=True):
        row[f"scenario_{int(label)}"] = int(count)
    return row


def plot_daily(report: LakeReport, path: Path) -> Path:
    """Save a PNG of daily transactions (top) and daily frauds by scenario (bottom)."""
    import matplotlib  # deferred: matplotlib (≈0.3 s) only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after matplotlib.use("Agg"): no GUI backend

    daily = report.daily
    days = pd.to_datetime(daily["day"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    top.plot(days, daily["transactions"], color="#1f4e79", linewidth=1.2)
    top.set_ylabel("transactions / day")
    top.set_title(f"Lake: {report.rows:,} transactions, {report.frauds:,} frauds")
    bottom_level = np.zeros(len(daily))
    colours = {1: "#e07b39", 2: "#b8336a", 3: "#4f9d69"}
    for scenario in report.frauds_by_scenario():
        counts = daily[f"scenario_{scenario}"].to_numpy(dtype=float)
        bottom.bar(
            days,
            counts,
            bottom=bottom_level,
            width=1.0,
            label=f"scenario {scenario}",
            color=colours.get(scenario),
        )
        bottom_level += counts
    bottom.set_ylabel("frauds / day")
    bottom.legend(loc="upper left", frameon=False)
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return path


def print_report(report: LakeReport) -> None:
    """Print a lake report: totals, frauds per scenario, daily volume, problems."""
    if report.daily.empty:
        console.print("[yellow]the lake is empty[/yellow]")
        return
    daily = report.daily
    table = Table(title="Lake summary", show_header=False)
    table.add_row("transactions", f"{report.rows:,}")
    table.add_row("frauds", f"{report.frauds:,} ({report.frauds / report.rows:.3%})")
    for scenario, count in report.frauds_by_scenario().items():
        table.add_row(f"  scenario {scenario}", f"{count:,}")
    table.add_row("days", f"{len(daily)} ({daily['day'].min()} → {daily['day'].max()})")
    volume = daily["transactions"]
    table.add_row(
        "tx per day", f"min {volume.min():,} / mean {volume.mean():,.0f} / max {volume.max():,}"
    )
    table.add_row(
        "frauds per day", f"mean {daily['frauds'].mean():.1f} / max {daily['frauds'].max():,}"
    )
    table.add_row("amount", f"{daily['amount'].sum():,.2f}")
    console.print(table)
    for problem in report.problems:
        err_console.print(f"[red]check failed:[/red] {problem}")
    if report.ok:
        console.print("[green]all lake checks passed[/green]")
