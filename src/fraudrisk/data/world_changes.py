"""A changing world: continue a handbook lake day by day, the world changing from a given day.

:func:`continue_days` appends days to the handbook world: the same customer and terminal
profiles (:func:`~fraudrisk.data.handbook.build_profiles`), the handbook's scenarios going on
(S1 over 220; S2 and S3 compromising the terminals and cards the book's per-day seeds pick, so
compromises begun in the lake's last weeks run on) and transaction ids after the lake's
largest. Each day is drawn vectorised from its own seeded stream (the fast generator's style,
not the book's per-customer loop), so a continuation with a change is identical to the one
without it before the change, and its unchanged part stays identical after it.

A :class:`DriftConfig` changes the world from its ``start`` day:

* **amount shift** — every amount is multiplied by ``amount_factor`` (prices, a currency
  change). S1's threshold is in the same money, so it scales too: the same purchases are
  frauds, but a model that learned "over 220 is fraud" now flags many genuine ones;
* **card testing** (a pattern the handbook lacks, scenario :data:`CARD_TESTING_SCENARIO`) —
  each day ``pattern_cards_per_day`` stolen cards are tested at night with a burst of 3-6 tiny
  transactions a minute or two apart at terminals all over the map, followed by 1-2 purchases
  of 100-200 (below S1's threshold). The signal is in the existing features (night, velocity,
  a new terminal, seconds since the previous transaction, the amount ratio), but a model that
  never saw it scores the tiny ones as genuine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudrisk.data.handbook import SECONDS_PER_DAY, HandbookConfig, build_profiles
from fraudrisk.data.profiles import Profiles
from fraudrisk.data.scenarios import (
    S1_AMOUNT_THRESHOLD,
    S2_DAYS,
    S2_TERMINALS_PER_DAY,
    S3_AMOUNT_FACTOR,
    S3_CUSTOMERS_PER_DAY,
    S3_DAYS,
    sample_ids,
)
from fraudrisk.data.simulate import Advance, DayTables, WriteResult, write_days
from fraudrisk.io.lake import Lake

#: ``tx_fraud_scenario`` of card-testing frauds (the handbook uses 1-3).
CARD_TESTING_SCENARIO = 4
_TESTS_PER_CARD = (3, 6)  # tiny transactions per burst, inclusive
_PURCHASES_PER_CARD = (1, 2)  # purchases after the tests, inclusive
_TEST_AMOUNT = (0.5, 5.0)
_PURCHASE_AMOUNT = (100.0, 200.0)
_BURST_START_S = (0, 4 * 3600)  # tested while the card holder sleeps
_TEST_GAP_S, _PURCHASE_GAP_S = 90.0, 600.0  # mean seconds between transactions of a burst


class NewPattern(StrEnum):
    """Fraud patterns the handbook's scenarios do not have."""

    card_testing = "card-testing"


@dataclass(frozen=True)
class DriftConfig:
    """How the world changes, and from which day.

    Attributes:
        start: First day of the changed world.
        amount_factor: Every amount (and S1's threshold) is multiplied by this.
        new_pattern: A new fraud pattern, or None.
        pattern_cards_per_day: Cards hit by the new pattern each day.
    """

    start: dt.date
    amount_factor: float = 1.0
    new_pattern: NewPattern | None = None
    pattern_cards_per_day: int = 20

    def __post_init__(self) -> None:
        if not math.isfinite(self.amount_factor) or self.amount_factor <= 0:
            raise ValueError(f"amount factor must be a number > 0, got {self.amount_factor}")
        if self.pattern_cards_per_day < 1:
            raise ValueError(f"pattern cards per day must be >= 1: {self.pattern_cards_per_day}")
        if self.amount_factor == 1.0 and self.new_pattern is None:
            raise ValueError("nothing changes: give an amount factor other than 1 or a pattern")

    def describe(self) -> str:
        """One line for people, e.g. ``from 2018-10-08: amounts ×2, new pattern card-testing``."""
        changes = [f"amounts ×{self.amount_factor:g}"] if self.amount_factor != 1.0 else []
        if self.new_pattern is not None:
            changes.append(
                f"new pattern {self.new_pattern.value} ({self.pattern_cards_per_day} cards/day, "
                f"scenario {CARD_TESTING_SCENARIO})"
            )
        return f"from {self.start}: " + ", ".join(changes)


class _Rows(NamedTuple):
    """One day's transactions, column by column (seconds since the lake epoch)."""

    customer: np.ndarray
    seconds: np.ndarray
    terminal: np.ndarray
    amount: np.ndarray
    tested: np.ndarray  # card-testing rows

    def concat(self, other: _Rows) -> _Rows:
        return _Rows(*(np.concatenate(pair) for pair in zip(self, other, strict=True)))

    def sorted(self) -> _Rows:
        order = np.argsort(self.seconds, kind="stable")
        return _Rows(*(column[order] for column in self))


class _World:
    """The handbook population and its compromise schedule, drawing one day at a time."""

    def __init__(self, config: HandbookConfig, seed: int) -> None:
        self.config, self.seed = config, seed
        self.profiles: Profiles = build_profiles(config)
        self.n_customers, self.n_terminals = config.n_customers, config.n_terminals

    def day(self, index: int, drift: DriftConfig | None) -> tuple[_Rows, np.ndarray, np.ndarray]:
        """Day ``index``'s rows in time order, with ``(tx_fraud, tx_fraud_scenario)``."""
        rng = np.random.default_rng([self.seed, index])
        rows = self._genuine(rng, index)
        factor = drift.amount_factor if drift else 1.0
        if factor != 1.0:
            rows = rows._replace(amount=np.round(rows.amount * factor, 2))
        if drift is not None and drift.new_pattern is NewPattern.card_testing:
            stream = np.random.default_rng([self.seed, index, 1])
            rows = rows.concat(
                self._card_testing(stream, index, drift.pattern_cards_per_day, factor)
            )
        rows = rows.sorted()
        fraud, scenario = self._label(rng, index, rows, factor)
        return rows, fraud, scenario

    def _genuine(self, rng: np.random.Generator, index: int) -> _Rows:
        customers, offsets = self.profiles.customers, self.profiles.offsets
        counts = rng.poisson(customers[:, 3])
        customer = np.repeat(np.arange(self.n_customers, dtype=np.int64), counts)
        seconds = rng.normal(SECONDS_PER_DAY / 2, 20_000, len(customer)).astype(np.int64)
        keep = (seconds > 0) & (seconds < SECONDS_PER_DAY) & (np.diff(offsets)[customer] > 0)
        customer, seconds = customer[keep], seconds[keep] + index * SECONDS_PER_DAY
        mean = customers[customer, 2]
        amount: np.ndarray = rng.normal(mean, mean / 2)
        negative = amount < 0
        amount[negative] = rng.uniform(0, 2 * mean[negative])
        start = offsets[customer]
        pick = (rng.random(len(customer)) * (offsets[customer + 1] - start)).astype(np.int64)
        terminal = self.profiles.terminal_ids[start + pick].astype(np.int64)
        return _Rows(customer, seconds, terminal, amount.round(2), np.zeros(len(customer), bool))

    def _card_testing(
        self, rng: np.random.Generator, index: int, n_cards: int, factor: float
    ) -> _Rows:
        cards = rng.choice(self.n_customers, min(n_cards, self.n_customers), replace=False)
        tests = rng.integers(_TESTS_PER_CARD[0], _TESTS_PER_CARD[1] + 1, len(cards))
        purchases = rng.integers(_PURCHASES_PER_CARD[0], _PURCHASES_PER_CARD[1] + 1, len(cards))
        sizes = tests + purchases
        starts = np.cumsum(sizes) - sizes
        position = np.arange(int(sizes.sum())) - np.repeat(starts, sizes)
        is_test = position < np.repeat(tests, sizes)
        gaps = rng.exponential(np.where(is_test, _TEST_GAP_S, _PURCHASE_GAP_S)) + 1
        elapsed = np.cumsum(gaps)  # since the burst began: minus what the earlier bursts took
        elapsed -= np.repeat(elapsed[starts] - gaps[starts], sizes)
        begin = np.repeat(rng.uniform(*_BURST_START_S, len(cards)), sizes)
        seconds = np.minimum(begin + elapsed, SECONDS_PER_DAY - 1).astype(np.int64)
        amount = np.where(
            is_test,
            rng.uniform(*_TEST_AMOUNT, len(position)),
            rng.uniform(*_PURCHASE_AMOUNT, len(position)),
        )
        return _Rows(
            np.repeat(cards.astype(np.int64), sizes),
            seconds + index * SECONDS_PER_DAY,
            rng.integers(0, self.n_terminals, len(position)).astype(np.int64),
            np.round(amount * factor, 2),
            np.ones(len(position), bool),
        )

    def _label(
        self, rng: np.random.Generator, index: int, rows: _Rows, factor: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """S1, S2, S3 over the handbook rows (a later one overwrites), then card testing."""
        fraud = np.zeros(len(rows.seconds), dtype=np.int8)
        scenario = np.zeros(len(rows.seconds), dtype=np.int8)
        book = ~rows.tested
        s1 = book & (rows.amount > S1_AMOUNT_THRESHOLD * factor)
        fraud[s1], scenario[s1] = 1, 1
        s2 = book & np.isin(
            rows.terminal, self._compromised(index, S2_DAYS, S2_TERMINALS_PER_DAY, self.n_terminals)
        )
        fraud[s2], scenario[s2] = 1, 2
        # One draw per covering window, as fast.py: a card compromised twice is hit twice.
        for card in self._compromised(index, S3_DAYS, S3_CUSTOMERS_PER_DAY, self.n_customers):
            candidates = np.flatnonzero(book & (rows.customer == card))
            hit = candidates[rng.random(len(candidates)) < 1 / 3]
            rows.amount[hit] *= S3_AMOUNT_FACTOR
            fraud[hit], scenario[hit] = 1, 3
        fraud[rows.tested], scenario[rows.tested] = 1, CARD_TESTING_SCENARIO
        return fraud, scenario

    @staticmethod
    def _compromised(index: int, length: int, per_day: int, population: int) -> np.ndarray:
        """Ids the book's seeds compromise on the days whose window covers day ``index``."""
        days = range(max(0, index - length + 1), index + 1)
        return np.concatenate([sample_ids(population, per_day, day) for day in days])


def continue_days(
    config: HandbookConfig,
    first_day: dt.date,
    n_days: int,
    drift: DriftConfig | None = None,
    first_transaction_id: int = 0,
    seed: int = 0,
) -> DayTables:
    """Day tables that continue the handbook world of ``config``, one day at a time.

    Args:
        config: The world's population and epoch (``start_date`` = the lake's epoch).
        first_day: First day to produce (on or after the epoch).
        n_days: Days to produce.
        drift: How the world changes from ``drift.start``; None = it does not.
        first_transaction_id: Id of the first transaction (the lake's largest + 1).
        seed: Seed of the continuation's draws (each day has its own stream).

    Returns:
        ``(day, table)`` in lake columns, chronological, ids consecutive.

    Raises:
        ValueError: If ``first_day`` is before the epoch, ``n_days`` or the id is negative.
    """
    index = (first_day - config.start_date).days
    if index < 0:
        raise ValueError(f"first day {first_day} is before the epoch {config.start_date}")
    if n_days < 0 or first_transaction_id < 0:
        raise ValueError("the number of days and the first transaction id must be >= 0")
    return _days(_World(config, seed), index, n_days, drift, first_transaction_id)


def _days(
    world: _World, first: int, n_days: int, drift: DriftConfig | None, next_id: int
) -> DayTables:
    epoch = world.config.start_date
    for index in range(first, first + n_days):
        day = epoch + dt.timedelta(days=index)
        rows, fraud, scenario = world.day(index, drift if drift and day >= drift.start else None)
        ids = np.arange(next_id, next_id + len(rows.seconds), dtype=np.int64)
        next_id += len(ids)
        yield (
            day,
            pa.table(
                {
                    "transaction_id": ids,
                    "tx_datetime": np.datetime64(epoch, "us")
                    + rows.seconds.astype("timedelta64[s]"),
                    "customer_id": rows.customer,
                    "terminal_id": rows.terminal,
                    "tx_amount": rows.amount,
                    "tx_time_seconds": rows.seconds,
                    "tx_time_days": np.full(len(ids), index, dtype=np.int32),
                    "tx_fraud": fraud,
                    "tx_fraud_scenario": scenario,
                }
            ),
        )


@dataclass(frozen=True)
class LakeEnd:
    """Where a lake ends: what a continuation must follow."""

    epoch: dt.date
    last_day: dt.date
    next_transaction_id: int
    customers: int  # largest customer id + 1
    terminals: int  # largest terminal id + 1


def lake_end(lake: Lake) -> LakeEnd:
    """Read the lake's epoch, last day, largest ids.

    Raises:
        ValueError: If the lake has no epoch or no day.
    """
    epoch, days = lake.epoch(), lake.days()
    if epoch is None or not days:
        raise ValueError(
            f"nothing to continue: {lake.storage.uri} holds no simulated days "
            "(run `fraudrisk simulate --preset handbook` first)"
        )
    ids = lake.dataset().to_table(columns=["transaction_id", "customer_id", "terminal_id"])
    largest = {name: pc.max(ids[name]).as_py() for name in ids.column_names}
    return LakeEnd(
        epoch,
        days[-1],
        int(largest["transaction_id"]) + 1,
        int(largest["customer_id"]) + 1,
        int(largest["terminal_id"]) + 1,
    )


def continue_lake(
    lake: Lake,
    config: HandbookConfig,
    n_days: int,
    drift: DriftConfig | None = None,
    first_day: dt.date | None = None,
    seed: int = 0,
    on_day: Advance | None = None,
) -> WriteResult:
    """Append ``n_days`` days of the handbook world to a lake (ids after its largest).

    Args:
        lake: A lake made by the handbook preset (or :func:`handbook_days` of ``config``).
        config: The population; its ``start_date`` is replaced by the lake's epoch.
        n_days: Days to append.
        drift: The world's change, or None.
        first_day: First appended day; default: the day after the lake's last.
        seed: Seed of the continuation's draws.
        on_day: Called with each written day's row count.

    Raises:
        ValueError: If the lake is empty, ``first_day`` is not after its last day, or the
            lake holds customers or terminals that ``config`` does not have.
    """
    end = lake_end(lake)
    first_day = first_day or end.last_day + dt.timedelta(days=1)
    if first_day <= end.last_day:
        raise ValueError(f"first day {first_day} must be after the lake's last day {end.last_day}")
    if end.customers > config.n_customers or end.terminals > config.n_terminals:
        raise ValueError(
            f"the lake has customer ids up to {end.customers - 1} and terminal ids up to "
            f"{end.terminals - 1}: not a handbook world of {config.n_customers} customers and "
            f"{config.n_terminals} terminals"
        )
    world = dataclasses.replace(config, start_date=end.epoch)
    days = continue_days(world, first_day, n_days, drift, end.next_transaction_id, seed)
    return write_days(lake, days, on_day)
