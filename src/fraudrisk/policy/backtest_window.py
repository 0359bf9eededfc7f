"""A backtest's window from the feature table and the lake, scored in batch by the champion.

The feature table's rows of the window (``tx_datetime`` in ``start..end``) are scored with the
model, vectorised, in chunks (a progress callback per chunk); the lake gives the transaction
fields the policies read (and the amount); the labels are given by the caller — those known by
``as_of`` (the CLI reads them with monitoring's delayed-label logic,
:func:`fraudrisk.monitoring.performance.known_labels`, which this layer may not import).
Rows without a known label are left out and counted.

Reason codes as live (``serving.reason_codes_for="flagged"``): only the rows whose risk reaches
the lowest review threshold of the policies are explained (the model's TreeSHAP, the top
``serving.reason_codes`` positive contributions, exactly as
:func:`fraudrisk.scoring.decisions.reason_codes` picks them), and only when a policy reads
``reasons``; :meth:`~fraudrisk.policy.backtest.Window.batch_for` then hides the reasons of the
rows a policy's own thresholds do not flag.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from fraudrisk.config import LakeSettings
from fraudrisk.features.table import NoFeatureTableError, open_dataset, rows_between
from fraudrisk.io.lake import Lake
from fraudrisk.policy.backtest import Window
from fraudrisk.policy.document import CheckedPolicy
from fraudrisk.schemas import SCORER_COLUMNS
from fraudrisk.scoring.model import LoadedModel

#: Rows scored per call: bounds memory, paces the progress bar.
CHUNK_ROWS = 100_000
#: Rows explained (TreeSHAP) per call.
EXPLAIN_ROWS = 10_000
#: Called with the rows scored so far and the rows to score.
Progress = Callable[[int, int], None]


class BacktestError(ValueError):
    """The window cannot be backtested; the message says why and what to do."""


def feature_rows(
    table_uri: str, settings: LakeSettings, start: dt.date, end: dt.date, columns: Sequence[str]
) -> pa.Table:
    """Feature-table rows with ``tx_datetime`` on days ``start..end``.

    Raises:
        BacktestError: If there is no feature table at ``table_uri``.
    """
    try:
        dataset = open_dataset(table_uri, settings)
    except NoFeatureTableError as error:
        raise BacktestError(str(error)) from error
    missing = sorted(set(columns) - set(dataset.schema.names))
    if missing:
        raise BacktestError(f"the feature table at {table_uri} has no column(s) {missing}")
    # in file order: rows are aligned with the lake by id, not by position
    return rows_between(dataset, ["transaction_id", *columns], start, end)


def aligned(ids: npt.NDArray[np.int64], keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Per id, its row among the sorted ``keys``, or -1 when absent."""
    at = np.searchsorted(keys, ids).clip(0, max(len(keys) - 1, 0))
    found = (at < len(keys)) & (keys[at] == ids) if len(keys) else np.zeros(len(ids), np.bool_)
    return np.where(found, at, -1)


def in_chunks(
    work: Callable[[int, int], None], rows: int, size: int, progress: Progress | None
) -> None:
    """``work(first, last)`` over chunks of ``rows``, on one thread per core.

    XGBoost releases the GIL while it predicts (and its predictions are thread-safe), so the
    chunks of a window score in parallel; each call writes its own slice of the output.
    """
    spans = [(first, min(first + size, rows)) for first in range(0, rows, size)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        done = 0
        for span, _ in zip(spans, pool.map(lambda s: work(*s), spans), strict=True):
            done += span[1] - span[0]
            if progress:
                progress(done, rows)


def score(
    model: LoadedModel, matrix: npt.NDArray[np.float32], progress: Progress | None
) -> npt.NDArray[np.float64]:
    """The model's calibrated risk of every row, in chunks scored in parallel."""
    risk = np.empty(len(matrix), dtype=np.float64)

    def work(first: int, last: int) -> None:
        risk[first:last] = model.probability(matrix[first:last])

    in_chunks(work, len(matrix), CHUNK_ROWS, progress)
    return risk


def reason_masks(
    model: LoadedModel, matrix: npt.NDArray[np.float32], rows: npt.NDArray[np.int64], top: int
) -> dict[str, npt.NDArray[np.bool_]]:
    """Per feature, True on the ``rows`` where it is among their ``top`` positive reasons."""
    contributions = model.contributions
    if contributions is None:
        raise BacktestError(f"{model.card.uri} gives no reason codes, which a policy reads")
    names = model.feature_names
    chosen = np.zeros((len(rows), len(names)), np.bool_)

    def work(first: int, last: int) -> None:
        assert contributions is not None  # narrowed above; mypy does not see it in here
        values = contributions(matrix[rows[first:last]])[:, : len(names)]
        order = np.argsort(-values, axis=1)[:, :top]  # as scoring.decisions.reason_codes
        picked = np.take_along_axis(values, order, axis=1) > 0
        np.put_along_axis(chosen[first:last], order, picked, axis=1)

    in_chunks(work, len(rows), EXPLAIN_ROWS, None)
    masks = {name: np.zeros(len(matrix), np.bool_) for name in names}
    for c, name in enumerate(names):
        masks[name][rows] = chosen[:, c]
    return masks


def feature_matrix(
    rows: pa.Table, features: Sequence[str], keep: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float32]:
    """The kept rows' features as the scorer's float32 matrix (columns in ``features`` order)."""
    matrix = np.empty((int(keep.sum()), len(features)), dtype=np.float32)
    everything = bool(keep.all())
    for i, name in enumerate(features):
        column = rows[name].to_numpy()
        matrix[:, i] = column if everything else column[keep]
    return matrix


def columns_read(
    model: LoadedModel, policies: Sequence[CheckedPolicy]
) -> tuple[list[str], list[str]]:
    """The lake's fields (the amount first) and the table's features (the model's first) read."""
    wanted = {c for p in policies for c in p.columns}
    fields = ["tx_amount", *sorted(wanted & set(SCORER_COLUMNS) - {"tx_amount"})]
    extra = sorted(wanted - set(SCORER_COLUMNS) - set(model.feature_names))
    return fields, [*model.feature_names, *extra]


def explain(
    model: LoadedModel,
    policies: Sequence[CheckedPolicy],
    matrix: npt.NDArray[np.float32],
    risk: npt.NDArray[np.float64],
    top: int,
) -> tuple[float, dict[str, npt.NDArray[np.bool_]] | None]:
    """The lowest review threshold and the reasons of the rows reaching it.

    ``(inf, None)`` when no policy reads reasons.
    """
    if not any(p.reads_reasons for p in policies):
        return math.inf, None
    explained_from = min(p.document.thresholds.review for p in policies)
    flagged = np.flatnonzero(risk >= explained_from)
    return explained_from, reason_masks(model, matrix[:, : len(model.feature_names)], flagged, top)


def _label_of(ids: npt.NDArray[np.int64], labels: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Per id, its known label (1 fraud, 0 genuine) or -1 when none is known."""
    known = labels.sort_values("transaction_id")
    keys = known["transaction_id"].to_numpy(np.int64)
    at = aligned(ids, keys)
    values = known["tx_fraud"].to_numpy(np.int64)
    return np.where(at >= 0, values[at.clip(0)] if len(values) else 0, -1)


def read_window(
    model: LoadedModel,
    policies: Sequence[CheckedPolicy],
    *,
    table_uri: str,
    lake: Lake,
    lake_settings: LakeSettings,
    start: dt.date,
    end: dt.date,
    as_of: dt.date,
    labels: pd.DataFrame,
    reason_codes: int,
    progress: Progress | None = None,
) -> Window:
    """The labelled, scored window the policies are backtested on.

    Args:
        model: The model that scores (the champion).
        policies: The policies to apply (their columns are read; reasons if one reads them).
        table_uri: The feature table.
        lake: The transaction lake (transaction fields, amounts).
        lake_settings: Storage options (S3) of the table.
        start: First day.
        end: Last day (already clipped to the labelled days).
        as_of: The day the labels are known by.
        labels: ``transaction_id``, ``tx_fraud``: the labels known by ``as_of``.
        reason_codes: Reasons per explained row (``serving.reason_codes``).
        progress: Called after every chunk scored (rows done, rows in all).

    Raises:
        BacktestError: If the table is missing, the window holds no row or no label.
    """
    fields, features = columns_read(model, policies)
    rows = feature_rows(table_uri, lake_settings, start, end, features)
    if not rows.num_rows:
        raise BacktestError(f"the feature table at {table_uri} holds no row of {start}..{end}")
    transactions = lake.read(start, end, columns=["transaction_id", *fields])
    ids = rows["transaction_id"].to_numpy()
    at_lake = aligned(ids, transactions["transaction_id"].to_numpy())
    label = _label_of(ids, labels)
    keep = (at_lake >= 0) & (label >= 0)
    if not keep.any():
        where = "the lake" if not (at_lake >= 0).any() else "the labels known"
        raise BacktestError(f"none of the {len(ids):,} scored rows of {start}..{end} is in {where}")
    matrix = feature_matrix(rows, features, keep)
    risk = score(model, matrix[:, : len(model.feature_names)], progress)
    columns: dict[str, Any] = {n: matrix[:, i] for i, n in enumerate(features)}
    at = at_lake[keep]
    columns |= {n: transactions[n].to_numpy(zero_copy_only=False)[at] for n in fields}
    explained_from, reasons = explain(model, policies, matrix, risk, reason_codes)
    return Window(
        risk=risk,
        fraud=label[keep] == 1,
        amount=np.asarray(columns["tx_amount"], dtype=np.float64),
        columns=columns,
        reasons=reasons,
        explained_from=explained_from,
        start=start,
        end=end,
        as_of=as_of,
        model=f"{model.card.uri} (version {model.card.version})",
        unlabelled=int(((at_lake >= 0) & (label < 0)).sum()),
    )
