"""In-process feature vectors of incoming batches equal the offline feature table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.support.data import synthetic_frame
from tests.support.models import states_before, unix_seconds

from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.scoring.state_reader import MemoryStateReader
from fraudrisk.scoring.vectors import TransactionBatch, batch_features

CUT_DAY = 35


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(customers=60, days=40)


def day_batch(frame: pd.DataFrame, day: int) -> tuple[pd.DataFrame, TransactionBatch]:
    rows = frame[frame["tx_time_days"] == day].sort_values(["tx_datetime", "transaction_id"])
    batch = TransactionBatch(
        transaction_id=rows["transaction_id"].to_numpy(np.int64),
        seconds=unix_seconds(rows).to_numpy(np.int64),
        customer_id=rows["customer_id"].to_numpy(np.int64),
        terminal_id=rows["terminal_id"].to_numpy(np.int64),
        tx_amount=rows["tx_amount"].to_numpy(np.float64),
    )
    return rows, batch


def offline(rows: pd.DataFrame) -> np.ndarray:
    return rows[list(FEATURE_NAMES)].to_numpy(np.float32)


def test_a_day_scored_as_one_batch_equals_the_offline_table(frame: pd.DataFrame) -> None:
    rows, batch = day_batch(frame, CUT_DAY)
    states = states_before(frame, int(batch.seconds.min()))
    online = batch_features(batch, states.customers, states.terminals, FEATURE_NAMES)
    assert online.shape == (len(rows), len(FEATURE_NAMES))
    np.testing.assert_allclose(online, offline(rows), rtol=1e-6, atol=1e-6)


def test_without_the_batch_s_earlier_transactions_the_vectors_differ(
    frame: pd.DataFrame,
) -> None:
    """Negative control: scoring rows one by one against the stale state is not offline."""
    rows, batch = day_batch(frame, CUT_DAY)
    assert rows["customer_id"].duplicated().any()  # the control needs repeat customers
    states = states_before(frame, int(batch.seconds.min()))
    one_by_one = np.vstack(
        [
            batch_features(
                batch.take(np.array([i])), states.customers, states.terminals, FEATURE_NAMES
            )
            for i in range(len(batch))
        ]
    )
    mismatched = ~np.isclose(one_by_one, offline(rows), rtol=1e-6, atol=1e-6).all(axis=1)
    assert mismatched.sum() > 0


def test_a_transaction_already_in_the_state_is_counted_once(frame: pd.DataFrame) -> None:
    rows, batch = day_batch(frame, CUT_DAY)
    first = batch.take(np.arange(3))
    later = int(batch.seconds[3]) if len(batch) > 3 else int(batch.seconds.max()) + 1
    states = states_before(frame, later)  # already holds the three (a retried request)
    again = batch_features(first, states.customers, states.terminals, FEATURE_NAMES)
    np.testing.assert_allclose(again, offline(rows.iloc[:3]), rtol=1e-6, atol=1e-6)


def test_unknown_entities_score_as_new_ones() -> None:
    batch = TransactionBatch(
        np.array([1]), np.array([1_600_000_000]), np.array([5]), np.array([9]), np.array([20.0])
    )
    empty = MemoryStateReader().read([5], [9])
    row = dict(
        zip(
            FEATURE_NAMES,
            batch_features(batch, empty.customers, empty.terminals, FEATURE_NAMES)[0],
            strict=True,
        )
    )
    assert row["customer_id_nb_tx_1day_window"] == 1
    assert row["terminal_id_nb_tx_7day_window"] == 0
    assert row["customer_id_new_terminal_30day_window"] == 1


def test_an_unknown_feature_name_is_a_key_error(frame: pd.DataFrame) -> None:
    _, batch = day_batch(frame, CUT_DAY)
    with pytest.raises(KeyError):
        batch_features(batch, {}, {}, ("no_such_feature",))
