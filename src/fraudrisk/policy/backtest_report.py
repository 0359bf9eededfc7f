"""The backtest for people: rich tables of the comparison, the rules and the threshold sweeps."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table

from fraudrisk.policy.backtest_results import BacktestResult, ThresholdSweep

#: Rows of a sweep table: the grid thinned to about this many (current and optima kept).
SWEEP_ROWS = 16
_FIGURES = (
    ("reviewed", "reviewed", "{:,}"),
    ("declined", "declined", "{:,}"),
    ("alerts/day", "alerts_per_day", "{:,.1f}"),
    ("reviews/day", "reviews_per_day", "{:,.1f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("fraud caught", "fraud_amount_caught", "{:,.0f}"),
    ("review cost", "review_cost", "{:,.0f}"),
    ("false-decline cost", "false_decline_cost", "{:,.0f}"),
    ("missed-fraud cost", "missed_fraud_cost", "{:,.0f}"),
    ("total cost", "total_cost", "{:,.0f}"),
)


def _cell(value: float | int | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def _signed(value: float | int | None, pattern: str) -> str:
    if value is None:
        return "—"
    text = pattern.format(round(value) if pattern == "{:,}" else value)  # counts stay whole
    return text if value < 0 else f"+{text}"


def comparison_table(result: BacktestResult) -> Table:
    """The candidate beside the active policy, and the change."""
    table = Table(title=f"Candidate vs active, {result.start}..{result.end} ({result.days} days)")
    table.add_column("figure")
    mine, theirs = result.candidate, result.active
    table.add_column(f"candidate {mine.name}", justify="right")
    if theirs is not None:
        table.add_column(f"active {theirs.name}", justify="right")
        table.add_column("change", justify="right")
    table.add_row("thresholds", f"{mine.review:g} / {mine.decline:g}", *_thresholds(result))
    for label, name, pattern in _FIGURES:
        cells = [_cell(getattr(mine.figures, name), pattern)]
        if theirs is not None and result.change is not None:
            cells += [
                _cell(getattr(theirs.figures, name), pattern),
                _signed(result.change[name], pattern),
            ]
        table.add_row(label, *cells)
    return table


def _thresholds(result: BacktestResult) -> list[str]:
    theirs = result.active
    return [] if theirs is None else [f"{theirs.review:g} / {theirs.decline:g}", ""]


def rules_table(result: BacktestResult) -> Table:
    """Per rule of the candidate: hits, precision, recall, false positives, overlap."""
    table = Table(title="Rules of the candidate (condition hits, whatever decided the row)")
    for column in (
        "rule",
        "action",
        "hits",
        "hit rate",
        "precision",
        "recall",
        "FPR",
        "fraud amount",
        "decided",
        "overlap",
    ):
        table.add_column(column, justify="left" if column in ("rule", "action") else "right")
    for rule in result.rules:
        table.add_row(
            rule.name,
            rule.action,
            f"{rule.hits:,}",
            f"{rule.hit_rate:.4%}",
            _cell(rule.precision, "{:.3f}"),
            _cell(rule.recall, "{:.3f}"),
            _cell(rule.false_positive_rate, "{:.5f}"),
            f"{rule.fraud_amount:,.0f}",
            f"{rule.decided:,}",
            _cell(rule.overlap_share, "{:.1%}"),
        )
    return table


def _thinned(sweep: ThresholdSweep) -> list[int]:
    """Indices of the sweep's points to show: evenly spaced, plus current and the optima."""
    n = len(sweep.points)
    keep = set(range(0, n, max(1, n // SWEEP_ROWS))) | {n - 1}
    marks = {sweep.current, sweep.cost_optimal.threshold}
    if sweep.budget_optimal is not None:
        marks.add(sweep.budget_optimal.threshold)
    keep |= {i for i, p in enumerate(sweep.points) if p.threshold in marks}
    return sorted(keep)


def sweep_table(sweep: ThresholdSweep, budget: int) -> Table:
    """The figures across the grid of one threshold (thinned), the marked points labelled."""
    held = "decline" if sweep.threshold == "review" else "review"
    table = Table(
        title=f"{sweep.threshold.capitalize()} threshold ({held} held at {sweep.other:g}, "
        f"alert budget {budget} reviews/day)"
    )
    table.add_column(sweep.threshold, justify="right")
    for label, _, _ in _FIGURES[2:]:
        table.add_column(label, justify="right")
    table.add_column("")
    for i in _thinned(sweep):
        point = sweep.points[i]
        cells = [_cell(getattr(point.figures, name), p) for _, name, p in _FIGURES[2:]]
        table.add_row(f"{point.threshold:.4g}", *cells, _marks(sweep, point.threshold))
    return table


def _marks(sweep: ThresholdSweep, threshold: float) -> str:
    marks = []
    if threshold == sweep.current:
        marks.append("current")
    if threshold == sweep.cost_optimal.threshold:
        marks.append("[green]cost-optimal[/]")
    if sweep.budget_optimal is not None and threshold == sweep.budget_optimal.threshold:
        marks.append("[cyan]best within budget[/]")
    return ", ".join(marks)


def summary_lines(result: BacktestResult) -> Iterable[str]:
    """The window, the labels and the optima in a few sentences."""
    yield (
        f"{result.transactions:,} labelled transactions ({result.frauds:,} frauds, "
        f"{result.fraud_amount:,.0f} of fraud) scored by {result.model}; labels known by "
        f"{result.as_of}"
        + (f", {result.unlabelled:,} unlabelled left out" if result.unlabelled else "")
    )
    for sweep in (result.review_sweep, result.decline_sweep):
        best, within = sweep.cost_optimal, sweep.budget_optimal
        line = (
            f"{sweep.threshold}: current {sweep.current:g}, cost-optimal {best.threshold:.4g} "
            f"(total cost {best.figures.total_cost:,.0f})"
        )
        if within is None:
            line += "; no threshold of the grid keeps reviews within the budget"
        else:
            line += (
                f", best within budget {within.threshold:.4g} ({within.figures.total_cost:,.0f})"
            )
        yield line


def print_report(result: BacktestResult, console: Console) -> None:
    """Every table of the backtest, then the summary."""
    console.print(comparison_table(result))
    if result.rules:
        console.print(rules_table(result))
    for sweep in (result.review_sweep, result.decline_sweep):
        console.print(sweep_table(sweep, result.alert_budget))
    for line in summary_lines(result):
        console.print(line)
