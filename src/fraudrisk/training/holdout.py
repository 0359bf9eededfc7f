"""Where a training run's served model learns and is checked: its training window and hold-out.

With L the last day of the dataset, labels are known up to L − delay; the hold-out week is the
last labelled week, and the training window ends ``delay`` days before it, so the model is
calibrated (and its thresholds chosen) on transactions it meets a delay after its last label,
as in production.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from fraudrisk.training.splits import DELTA_ASSESSMENT, DELTA_DELAY


@dataclass(frozen=True)
class Windows:
    """Training and hold-out periods of the served model (``*_end`` exclusive)."""

    train_start: dt.date
    train_end: dt.date
    holdout_start: dt.date
    holdout_end: dt.date


def plan_windows(frame: pd.DataFrame, window_days: int) -> Windows:
    """The training window and hold-out week of the served model (see this module's docstring).

    Raises:
        ValueError: If the dataset is too short for the window, the delay and the hold-out.
    """
    days = frame["tx_datetime"].dt.normalize()
    labelled_end = (days.max() + pd.Timedelta(days=1 - DELTA_DELAY)).date()
    holdout_start = labelled_end - dt.timedelta(days=DELTA_ASSESSMENT)
    train_end = holdout_start - dt.timedelta(days=DELTA_DELAY)
    train_start = train_end - dt.timedelta(days=window_days)
    if train_start < days.min().date():
        raise ValueError(
            f"the dataset starts after {train_start}: too short for {window_days} days"
        )
    return Windows(train_start, train_end, holdout_start, labelled_end)


def rows_between(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Rows with ``tx_datetime`` in [start, end)."""
    stamps = frame["tx_datetime"]
    return frame[(stamps >= pd.Timestamp(start)) & (stamps < pd.Timestamp(end))]
