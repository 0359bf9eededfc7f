"""``fraudrisk policy shadow-report``: the shadow version beside the active one, on live traffic.

Reads ``policy_shadow_decisions`` (written by the scorers while ``FRAUDRISK_POLICY__SHADOW_VERSION``
is set: :mod:`fraudrisk.policy.shadow`) and shows, for the same transactions, the decision
counts of both, how often they agree, the rows where they differ by decision pair, alerts per
day and — when the lake holds labels for those transactions (``--lake``) — the precision of
each one's alerts. :func:`register` adds the command to the ``policy`` group.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fraudrisk.config import get_settings
from fraudrisk.console import console, err_console, examples
from fraudrisk.vocab import ALERT_DECISIONS, APPROVE, DECLINE, REVIEW

if TYPE_CHECKING:
    from fraudrisk.alerts.shadow import ShadowStore

EPILOG = examples(
    "FRAUDRISK_POLICY__SHADOW_VERSION=3 fraudrisk stream score   # v3 decides in shadow",
    "fraudrisk policy shadow-report --version 3",
    "fraudrisk policy shadow-report --version 3 --start 2018-09-24 --end 2018-09-30 --json",
)

DECISIONS = (APPROVE, REVIEW, DECLINE)


@dataclass(frozen=True)
class ShadowReport:
    """Active and shadow decisions on the same transactions.

    Attributes:
        shadow_version: The shadow version.
        active_versions: The active versions the rows were decided by.
        rows: Transactions both decided.
        agree: Transactions they decided alike.
        active_counts: Decisions of the active versions.
        shadow_counts: Decisions of the shadow version.
        pairs: ``"active→shadow"`` → transactions, where they differ.
        alerts_per_day: Day → (active alerts, shadow alerts).
        labelled: Transactions with a known label.
        active_precision: Share of the active alerts that were fraud (None without labels).
        shadow_precision: Share of the shadow alerts that were fraud (None without labels).
    """

    shadow_version: int
    active_versions: list[int | None]
    rows: int
    agree: int
    active_counts: dict[str, int]
    shadow_counts: dict[str, int]
    pairs: dict[str, int]
    alerts_per_day: dict[str, tuple[int, int]]
    labelled: int
    active_precision: float | None
    shadow_precision: float | None

    @property
    def agreement(self) -> float:
        """Share of the transactions decided alike."""
        return self.agree / self.rows if self.rows else 1.0


def shadow_report(
    store: ShadowStore,
    version: int,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    labels: Mapping[int, bool] | None = None,
) -> ShadowReport:
    """Compare the shadow ``version`` with the active decisions stored beside it.

    Args:
        store: The shadow decisions.
        version: The shadow version.
        start: First transaction time (default: all).
        end: End of the window, excluded.
        labels: Fraud (True) or genuine, by transaction id, where known.
    """
    rows = store.read(version, start, end)
    active = [r["active_decision"] for r in rows]
    shadow = [r["shadow_decision"] for r in rows]
    pairs = Counter(f"{a}→{s}" for a, s in zip(active, shadow, strict=True) if a != s)
    days: dict[str, list[int]] = {}
    for row in rows:
        day = days.setdefault(row["tx_datetime"].date().isoformat(), [0, 0])
        day[0] += row["active_decision"] in ALERT_DECISIONS
        day[1] += row["shadow_decision"] in ALERT_DECISIONS
    known = labels or {}
    return ShadowReport(
        shadow_version=version,
        active_versions=sorted({r["active_version"] for r in rows}, key=lambda v: v or 0),
        rows=len(rows),
        agree=sum(a == s for a, s in zip(active, shadow, strict=True)),
        active_counts=dict(Counter(active)),
        shadow_counts=dict(Counter(shadow)),
        pairs=dict(pairs.most_common()),
        alerts_per_day={day: (a, s) for day, (a, s) in sorted(days.items())},
        labelled=sum(r["transaction_id"] in known for r in rows),
        active_precision=_precision(rows, "active_decision", known),
        shadow_precision=_precision(rows, "shadow_decision", known),
    )


def _precision(
    rows: Sequence[dict[str, Any]], column: str, labels: Mapping[int, bool]
) -> float | None:
    """Share of fraud among the labelled alerts of ``column`` (None: no labelled alert)."""
    outcomes = [
        labels[r["transaction_id"]]
        for r in rows
        if r[column] in ALERT_DECISIONS and r["transaction_id"] in labels
    ]
    return sum(outcomes) / len(outcomes) if outcomes else None


def lake_labels(lake_uri: str, rows: Sequence[dict[str, Any]]) -> dict[int, bool]:
    """The lake's labels of the transactions of ``rows`` (those it has)."""
    if not rows:
        return {}
    from fraudrisk.io.lake import Lake  # deferred: pyarrow, only when labels are asked for

    lake = Lake.open(lake_uri, get_settings().lake)
    first, last = rows[0]["tx_datetime"].date(), rows[-1]["tx_datetime"].date()
    table = lake.read(first, last, columns=["transaction_id", "tx_fraud"]).to_pydict()
    wanted = {r["transaction_id"] for r in rows}
    return {
        int(tx): bool(fraud)
        for tx, fraud in zip(table["transaction_id"], table["tx_fraud"], strict=True)
        if fraud is not None and tx in wanted
    }


def _table(report: ShadowReport) -> Table:
    active = ",".join(f"v{v}" if v is not None else "thresholds" for v in report.active_versions)
    table = Table(title=f"active ({active or '-'}) vs shadow v{report.shadow_version}")
    table.add_column("")
    table.add_column("active", justify="right")
    table.add_column("shadow", justify="right")
    for decision in DECISIONS:
        a, s = report.active_counts.get(decision, 0), report.shadow_counts.get(decision, 0)
        table.add_row(decision, str(a), str(s))
    for day, (a, s) in report.alerts_per_day.items():
        table.add_row(f"alerts {day}", str(a), str(s))
    if report.labelled:
        table.add_row(
            "precision of alerts", _share(report.active_precision), _share(report.shadow_precision)
        )
    return table


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _print(report: ShadowReport) -> None:
    console.print(_table(report))
    console.print(
        f"{report.rows} transactions, {report.agree} decided alike ({report.agreement:.1%}); "
        f"{report.labelled} labelled"
    )
    for pair, count in report.pairs.items():
        console.print(f"  {pair}: {count}")


def shadow_report_command(
    version: Annotated[
        int | None, typer.Option("--version", help="Shadow version (default: the newest stored).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD), included.")] = None,
    lake: Annotated[str | None, typer.Option(help="Lake with the labels (precision).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for machines.")] = False,
) -> None:
    """Show the shadow policy version beside the active one on the same live transactions."""
    from fraudrisk.alerts.shadow import ShadowStore  # deferred: sqlalchemy, off the CLI's start

    store = ShadowStore(get_settings().db_url)
    try:
        chosen = version if version is not None else next(iter(store.versions()), None)
        if chosen is None:
            err_console.print("no shadow decisions stored: set FRAUDRISK_POLICY__SHADOW_VERSION")
            raise typer.Exit(1)
        first = dt.datetime.fromisoformat(start) if start else None
        last = dt.datetime.fromisoformat(end) + dt.timedelta(days=1) if end else None
        labels = lake_labels(lake, store.read(chosen, first, last)) if lake else None
        report = shadow_report(store, chosen, first, last, labels)
    finally:
        store.close()
    if as_json:
        print(json.dumps(dataclasses.asdict(report) | {"agreement": report.agreement}))
    else:
        _print(report)


def register(app: typer.Typer) -> None:
    """Add ``shadow-report`` to the ``policy`` command group."""
    app.command("shadow-report", epilog=EPILOG)(shadow_report_command)
