"""The candidate and the champion scored on the same rows, for the gate's regression checks.

The rows are the candidate's hold-out: the newest labelled days of its dataset, after its
training window and unseen by its base model. Scoring the champion there answers the gate's
real question — which model fits the world as it is now — where each model's recorded
test-fold metrics only say how it did on its own, older periods. After a drift the champion's
recorded numbers stay high while it fails on the new days; a retrained candidate compared
with them would be rejected for being tested on a harder world.

No head-to-head (the gate falls back to the recorded metrics and says why) when there is no
champion, when it cannot be loaded or needs features the dataset lacks, when the champion was
trained on some of the hold-out days (it would be marked on its own training rows), or when
the hold-out holds no fraud (no ranking metric is defined).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudrisk.config import Settings
from fraudrisk.registry import versions as registry
from fraudrisk.registry.mlflow_io import normalise_metric_name
from fraudrisk.scoring.model import ModelLoadError, load_model
from fraudrisk.training.gate import HeadToHead
from fraudrisk.training.holdout import plan_windows, rows_between
from fraudrisk.training.metrics import performance_summary
from fraudrisk.training.recipes import Recipe
from fraudrisk.training.step_files import load_pickle, read_dataset, read_recipe

log = logging.getLogger(__name__)
_SCORE = "head_to_head_score"


@dataclass(frozen=True)
class CandidateFiles:
    """The candidate a training run produced: its dataset, recipe and calibrated model."""

    dataset_path: Path
    recipe_path: Path
    model_path: Path

    def compare_with_champion(self, settings: Settings) -> HeadToHead | str:
        """Both models on this candidate's hold-out, or why not."""
        frame, recipe = read_dataset(self.dataset_path), read_recipe(self.recipe_path)
        windows = plan_windows(frame, recipe.window_days)
        holdout = rows_between(frame, windows.holdout_start, windows.holdout_end)
        period = (windows.holdout_start, windows.holdout_end)
        return compare_on_holdout(settings, holdout, period, recipe, load_pickle(self.model_path))


def compare_on_holdout(
    settings: Settings,
    holdout: pd.DataFrame,
    period: tuple[dt.date, dt.date],
    recipe: Recipe,
    candidate: Any,
) -> HeadToHead | str:
    """Score the hold-out with the candidate and the current champion.

    Args:
        settings: Platform settings (the registry).
        holdout: The candidate's hold-out rows (features, ``tx_fraud``, ``tx_time_days``,
            ``customer_id``).
        period: The hold-out's first day and end (exclusive).
        recipe: The candidate's recipe (its feature columns).
        candidate: The calibrated candidate (``predict_fraud_probability``).

    Returns:
        Both models' metrics on the same rows, or why they cannot be compared there.
    """
    version = registry.get_alias_version(settings, registry.CHAMPION)
    if version is None:
        return "no champion"
    start, end = period
    if int(holdout["tx_fraud"].sum()) == 0:
        return f"no fraud in the hold-out {start}..{end}"
    try:
        champion = load_model(settings, f"models:/{settings.mlflow.model_name}/{version}")
    except ModelLoadError as error:
        return f"the champion cannot be loaded: {error}"
    overlap = _training_overlap(champion.card.tags, start, end)
    if overlap:
        return f"champion v{version} {overlap}"
    missing = [name for name in champion.feature_names if name not in holdout.columns]
    if missing:
        return f"champion v{version} needs features the dataset lacks: {missing}"
    champion_scores = champion.probability(
        holdout[list(champion.feature_names)].to_numpy(np.float32)
    )
    candidate_scores = candidate.predict_fraud_probability(
        holdout[list(recipe.features)].astype(np.float32)
    )
    return HeadToHead(
        period=f"{start}..{end}",
        transactions=len(holdout),
        frauds=int(holdout["tx_fraud"].sum()),
        champion_version=str(version),
        candidate=_metrics(holdout, candidate_scores),
        champion=_metrics(holdout, champion_scores),
    )


def _training_overlap(tags: dict[str, str], start: dt.date, end: dt.date) -> str:
    """Why the champion's recorded training days overlap [start, end), or ``""``."""
    recorded = registry.recorded_training_data(tags)
    if "train_start" not in recorded:
        return ""  # registered without a record (by hand): nothing says it saw these days
    first, last = recorded["train_start"], recorded["train_end"]
    if first < end and start < last:
        return f"was trained on {first}..{last}, which overlaps the hold-out {start}..{end}"
    return ""


def _metrics(holdout: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    """AUC ROC, AP and CP@100 of one model's scores on the hold-out."""
    scored = holdout[["tx_time_days", "customer_id", "tx_fraud"]].copy()
    scored[_SCORE] = np.asarray(scores, dtype=np.float64)
    summary = performance_summary(scored, score_col=_SCORE)
    return {normalise_metric_name(name): float(value) for name, value in summary.items()}
