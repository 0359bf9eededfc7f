"""Calibration on held-out data, so the served score is a probability of fraud.

A tuned classifier ranks well but its scores are rarely probabilities (class weights, boosting
and resampling all distort them). :func:`calibrate` maps the scores of an already fitted model
to probabilities with isotonic regression or Platt scaling fitted on a held-out period that the
model never saw; the model itself is frozen (scikit-learn ``FrozenEstimator``), never refitted.
:func:`reliability_plot` draws the calibration curve with the score histogram under it, and
:func:`brier` gives the Brier score (lower is better).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import brier_score_loss

CalibrationMethod = Literal["isotonic", "sigmoid"]


class ProbabilisticClassifier(Protocol):
    """A fitted scikit-learn compatible binary classifier."""

    def predict_proba(self, X: Any) -> Any:  # noqa: N803 - scikit-learn naming
        """Class probabilities, shape (n, 2), column 1 = fraud."""


class CalibratedModel:
    """A fitted classifier and the calibration mapping of its scores; picklable.

    Attributes:
        estimator: The scikit-learn ``CalibratedClassifierCV`` around the frozen model.
        method: ``"isotonic"`` or ``"sigmoid"`` (Platt scaling).
        feature_names: Column order the model expects when given a DataFrame, if known.
    """

    def __init__(
        self,
        estimator: CalibratedClassifierCV,
        method: CalibrationMethod,
        feature_names: list[str] | None = None,
    ) -> None:
        self.estimator = estimator
        self.method = method
        self.feature_names = feature_names

    @property
    def base_model(self) -> Any:
        """The uncalibrated model inside (as it was fitted by training)."""
        return self.estimator.estimator.estimator

    def predict_proba(self, X: Any) -> npt.NDArray[np.float64]:  # noqa: N803
        """Calibrated class probabilities.

        Args:
            X: Inputs in the form the base model was fitted on; a DataFrame is reordered to
                :attr:`feature_names` when those are known.

        Returns:
            An array of shape (n, 2): P(genuine), P(fraud).
        """
        inputs = X
        if self.feature_names is not None and isinstance(X, pd.DataFrame):
            inputs = X[self.feature_names]
        return np.asarray(self.estimator.predict_proba(inputs), dtype=np.float64)

    def predict_fraud_probability(self, X: Any) -> npt.NDArray[np.float64]:  # noqa: N803
        """Calibrated P(fraud) of each row, shape (n,)."""
        return self.predict_proba(X)[:, 1]


def calibrate(
    model: ProbabilisticClassifier,
    X_holdout: Any,  # noqa: N803
    y_holdout: npt.ArrayLike,
    method: CalibrationMethod = "isotonic",
) -> CalibratedModel:
    """Fit the calibration mapping of a fitted model's scores on held-out data.

    Args:
        model: A fitted classifier with ``predict_proba`` (left unchanged).
        X_holdout: Held-out inputs the model was not trained on (later than its training data).
        y_holdout: Binary labels of ``X_holdout`` (1 = fraud); both classes must be present.
        method: ``"isotonic"`` (non-parametric, needs a few hundred frauds) or ``"sigmoid"``
            (Platt scaling, robust with few frauds).

    Returns:
        The calibrated model.

    Raises:
        ValueError: If the labels are not binary with both classes present.
    """
    labels = np.asarray(y_holdout)
    if set(np.unique(labels).tolist()) != {0, 1}:
        raise ValueError("calibration needs binary labels with both classes present")
    estimator = CalibratedClassifierCV(FrozenEstimator(model), method=method)
    estimator.fit(X_holdout, labels)
    names = [str(c) for c in X_holdout.columns] if isinstance(X_holdout, pd.DataFrame) else None
    return CalibratedModel(estimator, method, names)


def brier(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Brier score: mean squared difference between P(fraud) and the label (lower is better).

    Args:
        y: Binary labels (1 = fraud).
        p: Predicted probabilities of fraud.

    Returns:
        The Brier score in [0, 1].
    """
    return float(brier_score_loss(np.asarray(y), np.asarray(p, dtype=np.float64)))


def reliability_plot(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    path: str | Path,
    n_bins: int = 10,
    title: str = "Reliability",
) -> Path:
    """Save a reliability diagram: calibration curve above, histogram of scores below.

    Bins are quantiles of the scores, so each point averages the same number of transactions
    (uniform bins leave the high-score bins almost empty at a fraud rate below 1 %).

    Args:
        y: Binary labels (1 = fraud).
        p: Predicted probabilities of fraud.
        path: Where to write the PNG (parent directories are created).
        n_bins: Number of bins of the curve.
        title: Title of the figure (the Brier score is appended).

    Returns:
        The path of the PNG.
    """
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    labels = np.asarray(y)
    scores = np.asarray(p, dtype=np.float64)
    frac_pos, mean_pred = calibration_curve(labels, scores, n_bins=n_bins, strategy="quantile")
    fig = Figure(figsize=(6, 7))
    curve, hist = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    curve.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    curve.plot(mean_pred, frac_pos, marker="o", label="model")
    curve.set_ylabel("observed fraud rate")
    curve.set_title(f"{title} (Brier {brier(labels, scores):.4f})")
    curve.legend(loc="upper left")
    hist.hist(scores, bins=50, range=(0.0, 1.0), color="tab:blue")
    hist.set_yscale("log")
    hist.set_xlabel("predicted probability of fraud")
    hist.set_ylabel("transactions")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight", format="png")  # KFP paths have no suffix
    return out
