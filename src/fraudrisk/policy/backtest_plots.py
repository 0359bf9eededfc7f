"""The backtest's plots (PNG, matplotlib's object API: no pyplot state, no GUI backend).

- ``review_cost.png`` — total cost (and its three parts) across review thresholds, the current
  and the cost-optimal thresholds marked, the best one within the alert budget, and the
  thresholds over the budget shaded;
- ``review_alerts.png`` — reviews and alerts per day across review thresholds, the alert
  budget as a line;
- ``decline_cost.png`` — the same cost curve across decline thresholds;
- ``rules.png`` — per rule of the candidate: hits and precision.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fraudrisk.policy.backtest_results import BacktestResult, ThresholdSweep

PLOTS = ("review_cost.png", "review_alerts.png", "decline_cost.png", "rules.png")


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight", format="png")
    return path


def _mark(axes: Axes, sweep: ThresholdSweep) -> None:
    """Vertical lines at the current, cost-optimal and best-within-budget thresholds."""
    axes.axvline(sweep.current, color="black", linestyle="--", label=f"current {sweep.current:g}")
    best = sweep.cost_optimal.threshold
    axes.axvline(best, color="green", linestyle=":", label=f"cost-optimal {best:.4g}")
    if sweep.budget_optimal is not None:
        within = sweep.budget_optimal.threshold
        axes.axvline(
            within, color="tab:cyan", linestyle="-.", label=f"best within budget {within:.4g}"
        )


def _budget_span(axes: Axes, sweep: ThresholdSweep, budget: int) -> None:
    """Shade the thresholds whose reviews per day exceed the alert budget."""
    over = [p.threshold for p in sweep.points if p.figures.reviews_per_day > budget]
    if over:
        label = f"over the alert budget ({budget} reviews/day)"
        axes.axvspan(min(over), max(over), color="red", alpha=0.08, label=label)


def cost_plot(sweep: ThresholdSweep, budget: int, path: Path) -> Path:
    """Total cost and its parts across the thresholds of ``sweep``, the budget shaded."""
    x = [p.threshold for p in sweep.points]
    figure = Figure(figsize=(8, 5))
    axes = figure.subplots()
    for name, style in (
        ("total_cost", "-"),
        ("review_cost", "--"),
        ("false_decline_cost", "--"),
        ("missed_fraud_cost", "--"),
    ):
        values = [getattr(p.figures, name) for p in sweep.points]
        axes.plot(x, values, style, label=name.replace("_", " "))
    _mark(axes, sweep)
    _budget_span(axes, sweep, budget)
    axes.set_xscale("log")
    axes.set_xlabel(f"{sweep.threshold} threshold (calibrated risk, log scale)")
    axes.set_ylabel("cost over the window")
    held = "decline" if sweep.threshold == "review" else "review"
    axes.set_title(f"Cost across {sweep.threshold} thresholds ({held} held at {sweep.other:g})")
    axes.legend(fontsize="small")
    return _save(figure, path)


def alerts_plot(sweep: ThresholdSweep, budget: int, path: Path) -> Path:
    """Reviews and alerts per day across the thresholds, the budget as a line."""
    x = [p.threshold for p in sweep.points]
    figure = Figure(figsize=(8, 5))
    axes = figure.subplots()
    axes.plot(x, [p.figures.reviews_per_day for p in sweep.points], label="reviews / day")
    axes.plot(x, [p.figures.alerts_per_day for p in sweep.points], label="alerts / day")
    axes.axhline(budget, color="red", label=f"alert budget {budget} reviews/day")
    _mark(axes, sweep)
    axes.set_xscale("log")
    axes.set_yscale("symlog")
    axes.set_xlabel(f"{sweep.threshold} threshold (calibrated risk, log scale)")
    axes.set_ylabel("per day")
    axes.set_title(f"Alerts per day across {sweep.threshold} thresholds")
    axes.legend(fontsize="small")
    return _save(figure, path)


def rules_plot(result: BacktestResult, path: Path) -> Path:
    """Hits (bars) and precision (bars) per rule of the candidate."""
    names = [r.name for r in result.rules] or ["(no rules)"]
    figure = Figure(figsize=(9, 0.5 * len(names) + 2))
    hits, precision = figure.subplots(1, 2, sharey=True)
    hits.barh(names, [r.hits for r in result.rules] or [0])
    hits.set_xlabel("hits")
    hits.invert_yaxis()
    precision.barh(names, [r.precision or 0.0 for r in result.rules] or [0.0], color="tab:orange")
    precision.set_xlabel("precision (frauds / hits)")
    precision.set_xlim(0, 1)
    figure.suptitle(f"Rules of {result.candidate.name}: hits and precision")
    return _save(figure, path)


def write_plots(result: BacktestResult, directory: Path) -> list[Path]:
    """Every plot of :data:`PLOTS` into ``directory``."""
    review, decline = result.review_sweep, result.decline_sweep
    return [
        cost_plot(review, result.alert_budget, directory / PLOTS[0]),
        alerts_plot(review, result.alert_budget, directory / PLOTS[1]),
        cost_plot(decline, result.alert_budget, directory / PLOTS[2]),
        rules_plot(result, directory / PLOTS[3]),
    ]
