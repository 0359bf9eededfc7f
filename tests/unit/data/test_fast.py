"""The fast generator: same process as the handbook (distributions), streaming, deterministic."""

import datetime as dt
import inspect

import numpy as np
import pyarrow as pa
import pytest

from fraudrisk.data.fast import FastConfig, FastSimulator
from fraudrisk.io.lake import conform


def concat(config: FastConfig) -> pa.Table:
    return pa.concat_tables(table for _, table in FastSimulator(config).days())


@pytest.fixture(scope="module")
def handbook_sized() -> pa.Table:
    return concat(FastConfig(n_customers=5_000, n_terminals=10_000, nb_days=60, seed=3))


def test_same_seed_same_rows_other_seed_other_rows():
    config = FastConfig(n_customers=200, n_terminals=400, nb_days=10, seed=11)
    assert concat(config).equals(concat(config))
    assert not concat(config).equals(concat(FastConfig(200, 400, 10, seed=12)))


def test_days_are_produced_lazily_one_at_a_time():
    simulator = FastSimulator(FastConfig(n_customers=100, n_terminals=200, nb_days=5))
    days = simulator.days()
    assert inspect.isgenerator(days)
    first_day, first = next(days)
    assert first_day == dt.date(2018, 4, 1) and simulator._next_id == first.num_rows


def test_ids_are_consecutive_and_rows_chronological(handbook_sized):
    ids = handbook_sized["transaction_id"].to_numpy()
    assert np.array_equal(ids, np.arange(len(ids)))
    seconds = handbook_sized["tx_time_seconds"].to_numpy()
    assert np.all(np.diff(seconds) >= 0)
    days = handbook_sized["tx_time_days"].to_numpy()
    assert np.array_equal(days, seconds // 86_400)
    assert conform(handbook_sized).num_rows == len(ids)  # fits the lake schema


def test_distribution_matches_the_handbook_process(handbook_sized):
    t = handbook_sized.to_pandas()
    per_day = t.groupby("tx_time_days").size()
    # handbook: ~9,586 transactions/day for 5,000 customers (mean of U(0,4) = 2, ~3 % dropped)
    assert 9_000 < per_day.mean() < 10_200
    assert t.tx_amount.min() >= 0 and 50 < t[t.tx_fraud_scenario != 3].tx_amount.mean() < 56
    late = t[t.tx_time_days >= 30]  # after the 28-day warm-up of S2
    assert 0.006 < late.tx_fraud.mean() < 0.012  # handbook: 0.837 % overall
    shares = late[late.tx_fraud == 1].tx_fraud_scenario.value_counts(normalize=True)
    assert 0.03 < shares[1] < 0.12 and 0.45 < shares[2] < 0.75 and 0.2 < shares[3] < 0.45
    assert (t[t.tx_fraud_scenario == 1].tx_amount > 220).all()


def test_terminals_are_reachable_from_their_customer():
    simulator = FastSimulator(FastConfig(n_customers=300, n_terminals=600, nb_days=3))
    table = pa.concat_tables(t for _, t in simulator.days()).to_pandas()
    customers, terminals = simulator.profiles.customers, simulator.profiles.terminals
    distance = np.hypot(*(customers[table.customer_id, :2] - terminals[table.terminal_id]).T)
    assert len(table) > 500 and distance.max() < 5.0


def test_population_scale_keeps_density_and_fraud_rate():
    big = FastConfig(n_customers=50_000, n_terminals=100_000, nb_days=1)
    simulator = FastSimulator(big)
    assert 65 < np.diff(simulator.profiles.offsets).mean() < 90  # the book's ~75 reachable
    assert big.terminals_per_day == 20 and big.customers_per_day == 30
