"""The fast generator: the handbook's generative process, vectorised, streamed day by day.

Same process as the handbook preset (customer and terminal profiles on a map, Poisson daily
counts, normal times and amounts, a uniformly chosen reachable terminal, scenarios S1-S3),
with its own draw order from one ``numpy.random.Generator``, so only the distribution — not
the rows — matches the published dataset. Differences, by design:

* the map grows with the population (``side = 100 * sqrt(n_terminals / 10_000)``), keeping the
  handbook's density so a customer still reaches ~75 terminals at any scale;
* the number of terminals (S2) and cards (S3) compromised per day grows with the population
  (2 per 10,000 terminals, 3 per 5,000 customers), keeping the book's fraud rate;
* S3 picks each transaction of a compromised card with probability 1/3 (the book samples
  exactly a third of the window), which lets a day be labelled without seeing later days.

Memory is bounded by one day of transactions plus the profiles, whatever the number of days.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fraudrisk.data.profiles import Profiles
from fraudrisk.data.scenarios import (
    S1_AMOUNT_THRESHOLD,
    S2_DAYS,
    S2_TERMINALS_PER_DAY,
    S3_AMOUNT_FACTOR,
    S3_CUSTOMERS_PER_DAY,
    S3_DAYS,
)

SECONDS_PER_DAY = 86_400
_HANDBOOK_CUSTOMERS, _HANDBOOK_TERMINALS, _HANDBOOK_SIDE = 5_000, 10_000, 100.0


@dataclass(frozen=True)
class FastConfig:
    """Parameters of the fast generator."""

    n_customers: int = 5_000
    n_terminals: int = 10_000
    nb_days: int = 183
    start_date: dt.date = dt.date(2018, 4, 1)
    radius: float = 5.0
    seed: int = 0

    @property
    def terminals_per_day(self) -> int:
        """S2 compromises per day: the book's 2 per 10,000 terminals."""
        return max(1, round(S2_TERMINALS_PER_DAY * self.n_terminals / _HANDBOOK_TERMINALS))

    @property
    def customers_per_day(self) -> int:
        """S3 compromises per day: the book's 3 per 5,000 customers."""
        return max(1, round(S3_CUSTOMERS_PER_DAY * self.n_customers / _HANDBOOK_CUSTOMERS))

    @property
    def side(self) -> float:
        """Side of the square map, grown with the number of terminals."""
        return _HANDBOOK_SIDE * math.sqrt(self.n_terminals / _HANDBOOK_TERMINALS)


def build_fast_profiles(config: FastConfig, rng: np.random.Generator) -> Profiles:
    """Draw the population and each customer's reachable terminals (k-d tree, CSR form)."""
    # deferred: scipy.spatial (≈0.3 s) only to draw the population
    from scipy.spatial import cKDTree

    customers = rng.uniform(
        [0, 0, 5, 0], [config.side, config.side, 100, 4], (config.n_customers, 4)
    )
    terminals = rng.uniform(0, config.side, (config.n_terminals, 2))
    pairs = cKDTree(customers[:, :2]).sparse_distance_matrix(
        cKDTree(terminals), config.radius, output_type="ndarray"
    )
    pairs = pairs[pairs["v"] < config.radius]
    order = np.argsort(pairs["i"].astype(np.int64) * config.n_terminals + pairs["j"])
    offsets = np.zeros(config.n_customers + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs["i"], minlength=config.n_customers), out=offsets[1:])
    return Profiles(customers, terminals, offsets, pairs["j"][order].astype(np.int32))


def _draw_per_day(rng: np.random.Generator, population: int, k: int, n_days: int) -> np.ndarray:
    """``k`` distinct ids out of ``population`` for each of ``n_days`` days, shape (n_days, k)."""
    k = min(k, population)
    if n_days == 0:
        return np.zeros((0, k), dtype=np.int64)
    return np.stack([rng.choice(population, k, replace=False) for _ in range(n_days)])


class _CompromiseSchedule:
    """Which terminals (S2) and cards (S3) are compromised on each day, drawn up front."""

    def __init__(self, config: FastConfig, rng: np.random.Generator) -> None:
        # The book draws compromises for days 0 .. nb_days - 2 (range(max day)).
        n_days = max(config.nb_days - 1, 0)
        self.terminals = _draw_per_day(rng, config.n_terminals, config.terminals_per_day, n_days)
        self.customers = _draw_per_day(rng, config.n_customers, config.customers_per_day, n_days)

    def terminals_on(self, day: int) -> np.ndarray:
        """Terminals whose 28-day compromise window covers ``day``."""
        return self.terminals[max(0, day - S2_DAYS + 1) : day + 1].ravel()

    def card_windows_on(self, day: int) -> np.ndarray:
        """Cards compromised on ``day``, once per covering 14-day window (overlaps repeat)."""
        return self.customers[max(0, day - S3_DAYS + 1) : day + 1].ravel()


class FastSimulator:
    """Vectorised transaction generator; iterate :meth:`days` for one table per day."""

    def __init__(self, config: FastConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.profiles = build_fast_profiles(config, self.rng)
        self.schedule = _CompromiseSchedule(config, self.rng)
        self._next_id = 0

    def days(self) -> Iterator[tuple[dt.date, pa.Table]]:
        """Yield ``(date, transactions)`` for each day, chronologically, ids consecutive."""
        for day in range(self.config.nb_days):
            yield self.config.start_date + dt.timedelta(days=day), self._day(day)

    def _day(self, day: int) -> pa.Table:
        customer, seconds = self._draw_times(day)
        amount = self._draw_amounts(customer)
        terminal = self._draw_terminals(customer)
        order = np.argsort(seconds, kind="stable")
        customer, seconds, amount, terminal = (
            a[order] for a in (customer, seconds, amount, terminal)
        )
        amount, fraud, scenario = self._label(day, customer, terminal, amount)
        ids = np.arange(self._next_id, self._next_id + len(seconds), dtype=np.int64)
        self._next_id += len(seconds)
        return _to_table(
            self.config.start_date, day, ids, seconds, customer, terminal, amount, fraud, scenario
        )

    def _draw_times(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        counts = self.rng.poisson(self.profiles.customers[:, 3])
        customer = np.repeat(np.arange(self.config.n_customers, dtype=np.int64), counts)
        seconds = self.rng.normal(SECONDS_PER_DAY / 2, 20_000, len(customer)).astype(np.int64)
        reachable = np.diff(self.profiles.offsets)[customer] > 0
        keep = (seconds > 0) & (seconds < SECONDS_PER_DAY) & reachable
        return customer[keep], seconds[keep] + day * SECONDS_PER_DAY

    def _draw_amounts(self, customer: np.ndarray) -> np.ndarray:
        mean = self.profiles.customers[customer, 2]
        amount: np.ndarray = self.rng.normal(mean, mean / 2)
        negative = amount < 0
        amount[negative] = self.rng.uniform(0, 2 * mean[negative])
        return amount.round(2)

    def _draw_terminals(self, customer: np.ndarray) -> np.ndarray:
        start = self.profiles.offsets[customer]
        n_reachable = self.profiles.offsets[customer + 1] - start
        pick = (self.rng.random(len(customer)) * n_reachable).astype(np.int64)
        terminals: np.ndarray = self.profiles.terminal_ids[start + pick].astype(np.int64)
        return terminals

    def _label(
        self, day: int, customer: np.ndarray, terminal: np.ndarray, amount: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fraud = np.zeros(len(amount), dtype=np.int8)
        scenario = np.zeros(len(amount), dtype=np.int8)
        s1 = amount > S1_AMOUNT_THRESHOLD
        fraud[s1], scenario[s1] = 1, 1
        s2 = np.isin(terminal, self.schedule.terminals_on(day))
        fraud[s2], scenario[s2] = 1, 2
        cards = self.schedule.card_windows_on(day)
        candidates = np.flatnonzero(np.isin(customer, cards))
        for card in cards:
            rows = candidates[customer[candidates] == card]
            hit = rows[self.rng.random(len(rows)) < 1 / 3]
            amount[hit] *= S3_AMOUNT_FACTOR
            fraud[hit], scenario[hit] = 1, 3
        return amount, fraud, scenario


def _to_table(
    start: dt.date,
    day: int,
    ids: np.ndarray,
    seconds: np.ndarray,
    customer: np.ndarray,
    terminal: np.ndarray,
    amount: np.ndarray,
    fraud: np.ndarray,
    scenario: np.ndarray,
) -> pa.Table:
    epoch_us = np.datetime64(start, "us")
    return pa.table(
        {
            "transaction_id": ids,
            "tx_datetime": epoch_us + seconds.astype("timedelta64[s]"),
            "customer_id": customer,
            "terminal_id": terminal,
            "tx_amount": amount,
            "tx_time_seconds": seconds,
            "tx_time_days": np.full(len(ids), day, dtype=np.int32),
            "tx_fraud": fraud,
            "tx_fraud_scenario": scenario,
        }
    )
