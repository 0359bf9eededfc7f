"""SHAP summary of an XGBoost model from XGBoost's own TreeSHAP (no ``shap`` package).

``Booster.predict(DMatrix, pred_contribs=True)`` gives every row's exact Shapley values in
margin (log-odds) units: one column per feature plus the bias, summing to the raw margin.
:func:`shap_summary_plot` draws them for a random sample of transactions as a mean(|SHAP|)
bar chart beside a beeswarm-style scatter (one row per feature, points coloured by the
feature's value). Other model kinds have no TreeSHAP here: the summary is skipped with the
reason logged and returned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudrisk.training.estimators import feature_matrix
from fraudrisk.training.recipes import Recipe

log = logging.getLogger(__name__)

#: Transactions explained by the summary (TreeSHAP cost grows with rows × trees × leaves).
SAMPLE_ROWS = 5_000
FILE_NAME = "shap_summary.png"


@dataclass(frozen=True)
class ShapSummary:
    """What :func:`shap_summary_plot` did.

    Attributes:
        path: The PNG, or None when skipped.
        rows: Transactions explained.
        mean_abs: Mean |SHAP| (log-odds) per feature, largest first.
        skipped: Why there is no summary, or None.
    """

    path: Path | None
    rows: int = 0
    mean_abs: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready record (``metrics.json`` key ``shap``)."""
        if self.skipped is not None:
            return {"skipped": self.skipped}
        return {"plot": f"plots/{FILE_NAME}", "rows": self.rows, "mean_abs": self.mean_abs}


def skip_reason(estimator: Any, recipe: Recipe) -> str | None:
    """Why TreeSHAP cannot explain ``estimator`` (None when it can)."""
    if recipe.model != "xgboost" or not hasattr(estimator, "get_booster"):
        return f"{recipe.model} is not an XGBoost model; the SHAP summary needs TreeSHAP"
    return None


def shap_values(estimator: Any, recipe: Recipe, frame: pd.DataFrame) -> pd.DataFrame:
    """Per-row SHAP values (log-odds) of a fitted XGBoost classifier, one column per feature.

    The bias column is dropped: for each row, values + bias = the raw margin.

    Raises:
        TypeError: If the estimator is not an XGBoost model.
    """
    reason = skip_reason(estimator, recipe)
    if reason is not None:
        raise TypeError(reason)
    from xgboost import DMatrix  # deferred: xgboost (≈1 s); only xgboost estimators get here

    contributions = estimator.get_booster().predict(
        DMatrix(feature_matrix(recipe, frame)), pred_contribs=True
    )
    return pd.DataFrame(contributions[:, :-1], index=frame.index, columns=list(recipe.features))


def shap_summary_plot(
    estimator: Any,
    recipe: Recipe,
    frame: pd.DataFrame,
    path: Path,
    rows: int = SAMPLE_ROWS,
    sample_name: str = "hold-out transactions",
) -> ShapSummary:
    """Save the SHAP summary of ``rows`` random rows of ``frame``; skip non-XGBoost models.

    Args:
        estimator: The fitted (uncalibrated) model.
        recipe: Its recipe (kind, feature order).
        frame: Rows to sample from, e.g. the hold-out week.
        path: Where to write the PNG (parent directories are created).
        rows: Sample size.
        sample_name: What the rows are, for the title.

    Returns:
        The plot's path and mean |SHAP| per feature, or the reason it was skipped.
    """
    reason = skip_reason(estimator, recipe)
    if reason is not None:
        log.warning("SHAP summary skipped: %s", reason)
        path.unlink(missing_ok=True)  # never log a stale summary of an earlier model
        return ShapSummary(path=None, skipped=reason)
    sample = frame.sample(min(rows, len(frame)), random_state=0)
    values = shap_values(estimator, recipe, sample)
    order = values.abs().mean().sort_values().index  # ascending: the largest is drawn on top
    title = f"SHAP summary (XGBoost TreeSHAP), {len(sample):,} {sample_name}"
    _draw(values[order], sample[list(order)], path, title)
    mean_abs = values.abs().mean().sort_values(ascending=False)
    return ShapSummary(path, len(sample), {str(k): float(v) for k, v in mean_abs.items()})


def _draw(values: pd.DataFrame, inputs: pd.DataFrame, path: Path, title: str) -> None:
    """Bar chart of mean |SHAP| (left) and beeswarm (right), features in ``values`` order."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(12, 0.35 * values.shape[1] + 1.8), layout="constrained")
    bars, swarm = fig.subplots(1, 2, sharey=True, width_ratios=[1, 2])
    positions = np.arange(values.shape[1])
    bars.barh(positions, values.abs().mean().to_numpy(), color="tab:blue")
    bars.set_yticks(positions, list(values.columns))
    bars.set_xlabel("mean |SHAP| (log-odds)")
    points = _beeswarm(swarm, values, inputs)
    swarm.axvline(0.0, color="grey", linewidth=0.8)
    swarm.set_xlabel("SHAP value (impact on the log-odds of fraud)")
    colorbar = fig.colorbar(points, ax=swarm, ticks=[0, 1], pad=0.01)
    colorbar.ax.set_yticklabels(["low", "high"])
    colorbar.set_label("feature value")
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight", format="png")  # KFP paths have no suffix


def _beeswarm(axes: Any, values: pd.DataFrame, inputs: pd.DataFrame) -> Any:
    """Scatter each feature's SHAP values on its row, spread vertically by local density."""
    rng = np.random.default_rng(0)
    points = None
    for row, name in enumerate(values.columns):
        shap = values[name].to_numpy()
        spread = 0.4 * _density(shap) * rng.uniform(-1.0, 1.0, len(shap))
        colour = inputs[name].rank(pct=True).to_numpy()  # value rank: robust to skew
        points = axes.scatter(
            shap, row + spread, c=colour, cmap="coolwarm", vmin=0, vmax=1, s=4, linewidths=0
        )
    return points


def _density(x: npt.NDArray[np.float64], bins: int = 50) -> npt.NDArray[np.float64]:
    """Each point's histogram-bin count over the largest count (1 = the densest bin)."""
    counts, edges = np.histogram(x, bins=bins)
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    return np.asarray(counts[index] / max(counts.max(), 1), dtype=np.float64)
