"""The handbook generator end to end: its frame equals the book's.

``generate_raw`` draws the customers in a process pool (worker processes, even for one worker).
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from tests.unit.data.test_handbook import book_add_frauds

from fraudrisk.data.handbook import (
    HandbookConfig,
    assemble,
    build_profiles,
    generate_raw,
)
from fraudrisk.data.scenarios import apply_handbook_scenarios
from fraudrisk.data.simulate import handbook_frame

pytestmark = pytest.mark.integration


def test_scenarios_equal_the_books_add_frauds():
    config = HandbookConfig(n_customers=100, n_terminals=200, nb_days=40)
    profiles = build_profiles(config)
    df = assemble(generate_raw(profiles, config.nb_days, workers=1), config.start_date)
    book = book_add_frauds(df, config.n_customers, config.n_terminals)
    amount, fraud, scenario = apply_handbook_scenarios(
        df.TX_TIME_DAYS.to_numpy(),
        df.CUSTOMER_ID.to_numpy(),
        df.TERMINAL_ID.to_numpy(),
        df.TX_AMOUNT.to_numpy(),
        profiles,
    )
    assert set(book.TX_FRAUD_SCENARIO) == {0, 1, 2, 3}
    assert np.array_equal(fraud, book.TX_FRAUD.to_numpy())
    assert np.array_equal(scenario, book.TX_FRAUD_SCENARIO.to_numpy())
    assert np.array_equal(amount, book.TX_AMOUNT.to_numpy())


def test_frame_is_sorted_numbered_and_dated_from_the_start_date():
    table = handbook_frame(
        HandbookConfig(n_customers=30, n_terminals=80, nb_days=5, start_date=dt.date(2020, 1, 1))
    ).to_pandas()
    assert table.transaction_id.tolist() == list(range(len(table)))
    assert table.tx_datetime.is_monotonic_increasing
    expected = pd.Timestamp("2020-01-01") + pd.to_timedelta(table.tx_time_seconds, unit="s")
    assert (table.tx_datetime == expected).all()
