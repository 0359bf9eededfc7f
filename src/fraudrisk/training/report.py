"""Evaluation reports of a trained recipe: the handbook test folds, per-scenario recall, plots."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import precision_recall_curve

from fraudrisk.training import estimators as models
from fraudrisk.training.metrics import auc_roc, average_precision, card_precision_at_k
from fraudrisk.training.protocol import SCORE, fold_starts, split_for_window
from fraudrisk.training.recipes import Recipe
from fraudrisk.training.splits import TEST_FOLDS_START

#: Alert budget for per-scenario recall: the top cards analysts can review per day.
CARDS_PER_DAY = 100


def score_test_folds(frame: pd.DataFrame, recipe: Recipe) -> dict[dt.date, pd.DataFrame]:
    """Retrain the recipe on each handbook test fold; the scored test rows by fold start."""
    scored: dict[dt.date, pd.DataFrame] = {}
    for start in fold_starts(TEST_FOLDS_START):
        split = split_for_window(frame, start, recipe.window_days)
        estimator = models.fit(recipe, split.train)
        columns = ["tx_time_days", "customer_id", "tx_fraud", "tx_fraud_scenario"]
        rows = split.test[columns].copy()
        rows[SCORE] = models.predict_scores(estimator, recipe, split.test)
        scored[start] = rows
    return scored


def fold_metrics(scored: pd.DataFrame) -> dict[str, float]:
    """AUC ROC, AP and CP@100 of scored test rows (as the protocol computes them)."""
    labels, scores = scored["tx_fraud"].to_numpy(), scored[SCORE].to_numpy()
    return {
        "auc_roc": auc_roc(labels, scores),
        "average_precision": average_precision(labels, scores),
        "card_precision_at_100": card_precision_at_k(scored, 100, SCORE).mean,
    }


def scenario_recall(scored: pd.DataFrame, cards_per_day: int = CARDS_PER_DAY) -> dict[str, float]:
    """Share of fraudulent transactions whose card is among the day's top-scored cards.

    The budget is ``cards_per_day`` cards per day (card score = its best transaction score).
    """
    cards = scored.groupby(["tx_time_days", "customer_id"])[SCORE].max()
    top = cards.sort_values(ascending=False, kind="stable").groupby(level=0).head(cards_per_day)
    keys = pd.MultiIndex.from_frame(scored[["tx_time_days", "customer_id"]])
    frauds = scored.assign(flagged=keys.isin(top.index))[scored["tx_fraud"].to_numpy() == 1]
    recall = {
        f"scenario_{int(s)}": float(g["flagged"].mean())
        for s, g in frauds.groupby("tx_fraud_scenario")
    }
    return recall | {"all": float(frauds["flagged"].mean()) if len(frauds) else 0.0}


def pr_curve_plot(y: Any, p: Any, path: Path) -> Path:
    """Save the precision-recall curve of scores, with their AP, as a PNG."""
    from matplotlib.figure import Figure  # deferred: matplotlib.figure (≈0.3 s) only when plotting

    precision, recall, _ = precision_recall_curve(np.asarray(y), np.asarray(p))
    fig = Figure(figsize=(6, 5))
    axes = fig.subplots()
    axes.step(recall, precision, where="post")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_title(f"Precision-recall, test folds pooled (AP {average_precision(y, p):.3f})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight", format="png")  # also for suffix-less paths
    return path


def feature_importance(estimator: Any, recipe: Recipe, holdout: pd.DataFrame) -> pd.Series:
    """XGBoost total gain per feature, or else permutation importance (AP) on the hold-out."""
    if recipe.model == "xgboost":
        gain = estimator.get_booster().get_score(importance_type="total_gain")
        values = [float(gain.get(f"f{i}", 0.0)) for i in range(len(recipe.features))]
        return pd.Series(values, index=list(recipe.features)).sort_values()
    sample = holdout.sample(min(len(holdout), 20_000), random_state=0)
    result = permutation_importance(
        estimator,
        models.feature_matrix(recipe, sample),
        sample["tx_fraud"].to_numpy(),
        scoring="average_precision",
        n_repeats=3,
        random_state=0,
    )
    return pd.Series(result.importances_mean, index=list(recipe.features)).sort_values()


def importance_plot(estimator: Any, recipe: Recipe, holdout: pd.DataFrame, path: Path) -> Path:
    """Save a horizontal bar chart of :func:`feature_importance`."""
    from matplotlib.figure import Figure  # deferred: matplotlib.figure (≈0.3 s) only when plotting

    importance = feature_importance(estimator, recipe, holdout)
    kind = "total gain" if recipe.model == "xgboost" else "permutation, AP drop"
    fig = Figure(figsize=(7, 0.3 * len(importance) + 1.5))
    axes = fig.subplots()
    axes.barh(importance.index, importance.to_numpy())
    axes.set_title(f"Feature importance ({kind})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight", format="png")  # also for suffix-less paths
    return path


def evaluation_artifacts(out_dir: Path) -> dict[str, Path]:
    """Files of an evaluation directory to log with the model, keyed by their path in the run.

    Every ``plots/*.png`` (PR curve, feature importance, SHAP summary when there is one, and
    the reliability plot when it was written there) and ``evaluation/metrics.json``.
    """
    plots = {f"plots/{png.name}": png for png in sorted((out_dir / "plots").glob("*.png"))}
    return plots | {"evaluation/metrics.json": out_dir / "metrics.json"}
