"""The handbook preset against a literal transcription of the book's generator (small scale)."""

import random

import numpy as np
import pandas as pd
import pytest

from fraudrisk.data.handbook import (
    HandbookConfig,
    build_profiles,
    customer_profiles,
    customer_transactions,
    terminal_profiles,
)
from fraudrisk.data.scenarios import sample_ids


def book_customer_profiles(n: int, seed: int) -> list[list[float]]:
    np.random.seed(seed)
    rows = []
    for _ in range(n):
        x, y = np.random.uniform(0, 100), np.random.uniform(0, 100)
        mean_amount = np.random.uniform(5, 100)
        rows.append([x, y, mean_amount, np.random.uniform(0, 4)])
    return rows


def book_terminals_within_radius(customer_xy: np.ndarray, terminals: np.ndarray, r: float) -> list:
    dist = np.sqrt(np.sum(np.square(customer_xy - terminals), axis=1))
    return list(np.where(dist < r)[0])


def book_transactions(cid: int, mean_amount: float, mean_nb: float, terminals: list, days: int):
    """The book's generate_transactions_table loop, on the global RNGs."""
    out = []
    random.seed(cid)
    np.random.seed(cid)
    for day in range(days):
        nb_tx = np.random.poisson(mean_nb)
        for _ in range(nb_tx):
            time_tx = int(np.random.normal(86400 / 2, 20000))
            if (time_tx > 0) and (time_tx < 86400):
                amount = np.random.normal(mean_amount, mean_amount / 2)
                if amount < 0:
                    amount = np.random.uniform(0, mean_amount * 2)
                amount = np.round(amount, decimals=2)
                if len(terminals) > 0:
                    out.append((time_tx + day * 86400, day, random.choice(terminals), amount))
    return out


def test_vectorised_profiles_equal_the_books_scalar_draws():
    assert np.array_equal(customer_profiles(60, 0), np.array(book_customer_profiles(60, 0)))
    np.random.seed(1)
    scalar = [[np.random.uniform(0, 100), np.random.uniform(0, 100)] for _ in range(40)]
    assert np.array_equal(terminal_profiles(40, 1), np.array(scalar))


def test_reachable_terminals_equal_the_books_per_customer_computation():
    profiles = build_profiles(HandbookConfig(n_customers=50, n_terminals=400))
    for cid in range(50):
        expected = book_terminals_within_radius(profiles.customers[cid, :2], profiles.terminals, 5)
        assert profiles.reachable(cid).tolist() == [int(t) for t in expected]


@pytest.fixture(scope="module")
def profiles_4243():
    """The profiles of 4,243 customers and 10,000 terminals (≈1.5 s), built once for every cid."""
    return build_profiles(HandbookConfig(n_customers=4243, n_terminals=10_000))


@pytest.mark.parametrize("cid", [0, 1, 7, 4242])
def test_customer_transactions_follow_the_books_draw_order(cid, profiles_4243):
    profiles = profiles_4243
    mean_amount, mean_nb = profiles.customers[cid, 2], profiles.customers[cid, 3]
    reachable = profiles.reachable(cid).tolist()
    ours = customer_transactions(cid, mean_amount, mean_nb, reachable, 30)
    book = book_transactions(cid, mean_amount, mean_nb, reachable, 30)
    assert len(ours) > 0
    assert ours == [(t, d, int(term), float(a)) for t, d, term, a in book]


def test_sample_ids_equal_pandas_series_sample():
    ids = pd.Series(np.arange(10_000))
    for day in (0, 1, 99):
        assert sample_ids(10_000, 2, day).tolist() == ids.sample(n=2, random_state=day).tolist()


def book_add_frauds(df: pd.DataFrame, n_customers: int, n_terminals: int) -> pd.DataFrame:
    """The book's add_frauds, verbatim apart from column names."""
    df = df.copy()
    df["TX_FRAUD"] = 0
    df["TX_FRAUD_SCENARIO"] = 0
    df.loc[df.TX_AMOUNT > 220, "TX_FRAUD"] = 1
    df.loc[df.TX_AMOUNT > 220, "TX_FRAUD_SCENARIO"] = 1
    terminals, customers = pd.Series(np.arange(n_terminals)), pd.Series(np.arange(n_customers))
    for day in range(df.TX_TIME_DAYS.max()):
        compromised = terminals.sample(n=2, random_state=day)
        rows = df[
            (day <= df.TX_TIME_DAYS)
            & (day + 28 > df.TX_TIME_DAYS)
            & (df.TERMINAL_ID.isin(compromised))
        ]
        df.loc[rows.index, "TX_FRAUD"] = 1
        df.loc[rows.index, "TX_FRAUD_SCENARIO"] = 2
    for day in range(df.TX_TIME_DAYS.max()):
        compromised = customers.sample(n=3, random_state=day).values
        rows = df[
            (day <= df.TX_TIME_DAYS)
            & (day + 14 > df.TX_TIME_DAYS)
            & (df.CUSTOMER_ID.isin(compromised))
        ]
        random.seed(day)
        chosen = random.sample(list(rows.index.values), k=int(len(rows) / 3))
        df.loc[chosen, "TX_AMOUNT"] = df.loc[chosen, "TX_AMOUNT"] * 5
        df.loc[chosen, "TX_FRAUD"] = 1
        df.loc[chosen, "TX_FRAUD_SCENARIO"] = 3
    return df
