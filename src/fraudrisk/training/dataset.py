"""The training frame: the feature table joined with the lake's labels and time columns.

One row per transaction. The labels (``tx_fraud``, ``tx_fraud_scenario``) and the day index
(``tx_time_days``) come from the lake; they are targets and split keys, never model inputs
(a :class:`~fraudrisk.training.recipes.Recipe` only accepts feature-table features).

Labels given later — analysts resolving cases, chargeback feeds — are in the labels table
beside the lake; those given before the training run's point in time replace the lake's label
of their transaction (a label exists only from its label time: a resolution of tomorrow never
reaches a model trained today).
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from fraudrisk.data.labels import LabelsTable
from fraudrisk.features.definitions import FEATURE_NAMES, KEY_COLUMNS
from fraudrisk.features.table import FeatureTable
from fraudrisk.io.lake import Lake

log = logging.getLogger(__name__)

#: Columns taken from the lake: the split key and the labels.
LAKE_COLUMNS: tuple[str, ...] = ("transaction_id", "tx_time_days", "tx_fraud", "tx_fraud_scenario")
#: Label columns of the frame (never features).
LABEL_COLUMNS: tuple[str, ...] = ("tx_fraud", "tx_fraud_scenario")


def load_frame(
    table_uri: str, lake_uri: str, labels_given_before: dt.datetime | None = None
) -> pd.DataFrame:
    """Join the feature table with the lake's labels and time columns by ``transaction_id``.

    Args:
        table_uri: Root of the feature table (local path or ``s3://``).
        lake_uri: Root of the lake holding the labels.
        labels_given_before: The point in time of the labels table's labels (naive UTC);
            default now.

    Returns:
        One row per transaction, sorted by ``transaction_id``, with a RangeIndex: the key
        columns, every feature, ``tx_time_days``, ``tx_fraud`` and ``tx_fraud_scenario``.

    Raises:
        ValueError: If the two sources do not hold the same transactions, an id is repeated
            or a label is missing.
    """
    features = FeatureTable.open(table_uri).read([*KEY_COLUMNS, *FEATURE_NAMES]).to_pandas()
    lake = Lake.open(lake_uri)
    labels = lake.read(columns=list(LAKE_COLUMNS)).to_pandas()
    given_before = labels_given_before or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    given = LabelsTable.beside(lake.storage).read(given_before)
    return join_labels(features, apply_given_labels(labels, given))


def apply_given_labels(labels: pd.DataFrame, given: pd.DataFrame) -> pd.DataFrame:
    """The lake's labels with those of the labels table in place of theirs.

    Args:
        labels: Lake rows with ``transaction_id`` and ``tx_fraud``.
        given: The labels table's newest label per transaction (``tx_fraud``, ``source``).

    Returns:
        ``labels`` with ``tx_fraud`` replaced where a label was given (ids the lake does not
        hold are left out: the feature table has no row for them).
    """
    if not len(given):
        return labels
    newer = given.set_index("transaction_id")["tx_fraud"]
    mine = labels["transaction_id"].isin(newer.index)
    replaced = labels["transaction_id"][mine].map(newer).astype("int64")
    changed = int((replaced != labels.loc[mine, "tx_fraud"]).sum())
    log.info(
        "%d labels from the labels table (%s): %d changed the lake's",
        int(mine.sum()),
        ", ".join(f"{n} {s}" for s, n in given["source"].value_counts().items()),
        changed,
    )
    fraud = labels["tx_fraud"].astype("Int64")  # nullable: join_labels names a missing one
    fraud.loc[mine] = replaced
    return labels.assign(tx_fraud=fraud)


def join_labels(features: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Join feature rows and lake label rows one to one on ``transaction_id``.

    Args:
        features: Feature-table rows (key columns + features).
        labels: Lake rows with :data:`LAKE_COLUMNS`.

    Returns:
        The joined frame, sorted by ``transaction_id``, with a RangeIndex.

    Raises:
        ValueError: If the row counts or the ids differ, an id repeats or a label is null.
    """
    if len(features) != len(labels):
        raise ValueError(
            f"feature table has {len(features):,} rows but the lake has {len(labels):,}: "
            "rebuild the features for this lake"
        )
    for name, frame in (("feature table", features), ("lake", labels)):
        if frame["transaction_id"].duplicated().any():
            raise ValueError(f"{name} repeats transaction ids")
    frame = features.merge(
        labels[list(LAKE_COLUMNS)], on="transaction_id", how="inner", validate="one_to_one"
    )
    if len(frame) != len(features):
        missing = len(features) - len(frame)
        raise ValueError(f"{missing:,} transaction ids of the feature table are not in the lake")
    if frame["tx_fraud"].isna().any():
        raise ValueError("some transactions have no label (tx_fraud is null)")
    frame["tx_fraud"] = frame["tx_fraud"].astype("int64")
    frame["tx_time_days"] = frame["tx_time_days"].astype("int64")
    return frame.sort_values("transaction_id", ignore_index=True)
