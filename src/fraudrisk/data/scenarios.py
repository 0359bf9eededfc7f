"""The handbook's three fraud scenarios, applied exactly as the book applies them.

S1: amount > 220. S2: two terminals per day compromised for 28 days. S3: three customers per
day whose card is compromised for 14 days, a third of their transactions (chosen by Python's
``random.sample`` seeded with the day) multiplied by 5. A later scenario overwrites the label
of an earlier one, and overlapping S3 windows multiply an amount twice, as in the book.
"""

from __future__ import annotations

import random

import numpy as np

from fraudrisk.data.profiles import Profiles

S1_AMOUNT_THRESHOLD = 220.0
S2_TERMINALS_PER_DAY, S2_DAYS = 2, 28
S3_CUSTOMERS_PER_DAY, S3_DAYS, S3_AMOUNT_FACTOR = 3, 14, 5.0


class _RowsByEntity:
    """Row indices grouped by entity id, ascending (the frame's chronological order)."""

    def __init__(self, entity: np.ndarray, population: int) -> None:
        self.order = np.argsort(entity, kind="stable")
        self.bounds = np.searchsorted(entity[self.order], np.arange(population + 1))

    def rows(self, ids: np.ndarray) -> np.ndarray:
        parts = [self.order[self.bounds[i] : self.bounds[i + 1]] for i in ids]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def sample_ids(population: int, n: int, seed: int) -> np.ndarray:
    """Pandas ``Series(range(population)).sample(n=n, random_state=seed)``, without pandas."""
    return np.random.RandomState(seed).choice(population, size=n, replace=False)


def apply_handbook_scenarios(
    days: np.ndarray,
    customer: np.ndarray,
    terminal: np.ndarray,
    amount: np.ndarray,
    profiles: Profiles,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label frauds over chronologically sorted transactions.

    Args:
        days: tx_time_days per row.
        customer: customer_id per row.
        terminal: terminal_id per row.
        amount: tx_amount per row (not modified; the S3-modified copy is returned).
        profiles: the population (its sizes drive the compromised-entity samples).

    Returns:
        ``(amount, tx_fraud, tx_fraud_scenario)``.
    """
    amount = amount.astype(np.float64, copy=True)
    fraud = np.zeros(len(days), dtype=np.int8)
    scenario = np.zeros(len(days), dtype=np.int8)
    s1 = amount > S1_AMOUNT_THRESHOLD
    fraud[s1], scenario[s1] = 1, 1
    last_day = int(days.max(initial=0))
    n_terminals, n_customers = len(profiles.terminals), len(profiles.customers)
    by_terminal = _RowsByEntity(terminal, n_terminals)
    by_customer = _RowsByEntity(customer, n_customers)
    for day in range(last_day):
        ids = sample_ids(n_terminals, S2_TERMINALS_PER_DAY, day)
        rows = _in_window(by_terminal.rows(ids), days, day, S2_DAYS)
        fraud[rows], scenario[rows] = 1, 2
    for day in range(last_day):
        ids = sample_ids(n_customers, S3_CUSTOMERS_PER_DAY, day)
        rows = _in_window(by_customer.rows(ids), days, day, S3_DAYS)
        chosen = random.Random(day).sample(rows.tolist(), k=len(rows) // 3)
        amount[chosen] *= S3_AMOUNT_FACTOR
        fraud[chosen], scenario[chosen] = 1, 3
    return amount, fraud, scenario


def _in_window(rows: np.ndarray, days: np.ndarray, first: int, length: int) -> np.ndarray:
    d = days[rows]
    inside: np.ndarray = rows[(d >= first) & (d < first + length)]
    return inside
