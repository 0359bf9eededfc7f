"""The stream scorer's entity-state cache: idempotent merges, read-through, incremental pruning."""

from __future__ import annotations

import random

import numpy as np
import pytest

from fraudrisk.features.definitions import CUSTOMER_HORIZON_SECONDS, DAY, UNKNOWN_LABEL
from fraudrisk.features.online import CustomerState, TerminalState
from fraudrisk.jobs import state_cache as cache_module
from fraudrisk.jobs.state_cache import StateCache
from fraudrisk.scoring.state_reader import MemoryStateReader
from fraudrisk.scoring.vectors import TransactionBatch

Row = tuple[int, int, int, int, float]  # transaction id, seconds, customer, terminal, amount


def batch_of(rows: list[Row]) -> TransactionBatch:
    ids, seconds, customers, terminals, amounts = (list(c) for c in zip(*rows, strict=True))
    return TransactionBatch(
        np.array(ids),
        np.array(seconds),
        np.array(customers),
        np.array(terminals),
        np.array(amounts, dtype=np.float64),
    )


def stream(n: int, seed: int = 0) -> list[Row]:
    """Transactions in time order, several in the same second, few customers and terminals."""
    rng = random.Random(seed)
    rows, second = [], 1_500_000_000
    for tx_id in range(n):
        second += rng.choice([0, 0, 1, 60, 3_600])
        rows.append((tx_id, second, rng.randrange(5), rng.randrange(4), float(tx_id % 17)))
    return rows


def reference(rows: list[Row]) -> tuple[dict[int, CustomerState], dict[int, TerminalState]]:
    """The states the online module's idempotent merges build."""
    customers: dict[int, CustomerState] = {}
    terminals: dict[int, TerminalState] = {}
    for tx_id, second, customer, terminal, amount in rows:
        customers.setdefault(customer, CustomerState()).merge(second, tx_id, amount, terminal)
        terminals.setdefault(terminal, TerminalState()).merge(second, tx_id)
    return customers, terminals


def events(state: CustomerState | TerminalState) -> list[tuple[object, ...]]:
    return sorted(zip(*(getattr(state, name) for name in state.__dataclass_fields__), strict=True))


def same_states(cache: StateCache, rows: list[Row]) -> bool:
    customers, terminals = reference(rows)
    return {k: events(v) for k, v in cache.customers.items()} == {
        k: events(v) for k, v in customers.items()
    } and {k: events(v) for k, v in cache.terminals.items()} == {
        k: events(v) for k, v in terminals.items()
    }


def test_batches_build_the_states_of_the_idempotent_merges() -> None:
    rows = stream(400)
    cache = StateCache(None)
    for start in range(0, len(rows), 37):
        cache.apply(batch_of(rows[start : start + 37]))
    assert same_states(cache, rows)


def test_replayed_and_overlapping_batches_count_each_transaction_once() -> None:
    rows = stream(300, seed=1)
    cache = StateCache(None)
    cache.apply(batch_of(rows[:200]))
    cache.apply(batch_of(rows[100:300]))  # a crash replays the second half of the first batch
    cache.apply(batch_of(rows[:50]))  # and an old batch arrives again
    assert same_states(cache, rows)
    assert sum(len(s.event_ids) for s in cache.customers.values()) == 300


def test_transactions_the_backing_store_already_holds_are_not_added_again() -> None:
    rows = stream(120, seed=2)
    customers, terminals = reference(rows)  # the online state already holds every transaction
    cache = StateCache(MemoryStateReader(customers, terminals))
    replay = batch_of(rows[60:])
    cache.read(replay.customer_id.tolist(), replay.terminal_id.tolist())
    cache.apply(replay)
    assert same_states(cache, rows)


def test_a_label_recorded_before_its_transaction_is_kept() -> None:
    cache = StateCache(None)
    cache.apply_labels([(3, 1_000, 77, 1)])
    cache.apply(batch_of([(77, 1_000, 1, 3, 5.0), (78, 900, 1, 3, 6.0)]))
    terminal = cache.terminals[3]
    assert events(terminal) == [(900, 78, UNKNOWN_LABEL), (1_000, 77, 1)]


def test_pruning_spreads_over_batches_and_keeps_the_horizon() -> None:
    old, now = 1_500_000_000, 1_500_000_000 + 40 * DAY
    rows = [(i, old + i, i % 50, i % 50, 1.0) for i in range(50)]
    rows += [(100 + i, now + i, i % 50, i % 50, 1.0) for i in range(50)]
    cache = StateCache(None)
    cache.apply(batch_of(rows))
    cache.prune()
    assert all(
        min(s.event_seconds) > now - CUSTOMER_HORIZON_SECONDS for s in cache.customers.values()
    )
    assert all(len(s.event_ids) == 1 for s in cache.customers.values())

    small = StateCache(None)
    small.apply(batch_of(rows[:50]))
    later = rows[50:]
    small.apply(batch_of(later[:10]))  # 10 merges: a 10 / PRUNE_EVERY share of the entities
    pruned = sum(len(s.event_ids) == 1 for s in small.customers.values() if len(s.event_ids))
    assert pruned < 50  # not everything at once...
    for start in range(10, 50, 10):
        small.apply(batch_of(later[start : start + 10]))
    for _ in range(cache_module.PRUNE_EVERY // 1000):
        small._prune_some(1000)  # ...but every entity within PRUNE_EVERY merges
    assert all(len(s.event_ids) == 1 for s in small.customers.values())


def test_forgetting_customers_after_a_rebalance_reads_them_again() -> None:
    rows = stream(50, seed=3)
    customers, terminals = reference(rows)
    cache = StateCache(MemoryStateReader(customers, terminals))
    cache.read([0, 1], [])
    cache.forget_customers(keep=[1])
    assert set(cache.customers) == {1}
    cache.read([0], [])  # scoring reads first: the store's state comes back
    late = batch_of([(999, rows[-1][1] - 5, 0, 0, 1.0)])  # not later than all of 0's events
    cache.apply(late)
    cache.apply(late)
    assert cache.customers[0].event_ids.count(999) == 1
    assert set(rows_of(rows, customer=0)) < set(cache.customers[0].event_ids)


def rows_of(rows: list[Row], customer: int) -> list[int]:
    return [tx_id for tx_id, _, c, _, _ in rows if c == customer]


def _interleaved_batches(rows: list[Row], lag_s: int, size: int) -> list[list[Row]]:
    """Batches as one scorer consumes two partitions (by customer), the second ``lag_s`` behind."""
    ahead = [r for r in rows if r[2] % 2 == 0]
    behind = [r for r in rows if r[2] % 2 == 1]
    batches, i, j = [], 0, 0
    while i < len(ahead) or j < len(behind):
        batch = ahead[i : i + size]
        i += len(batch)
        horizon = (batch[-1][1] if batch else behind[-1][1]) - lag_s
        late = [r for r in behind[j : j + 10 * size] if r[1] <= horizon] or behind[j : j + 1]
        j += len(late)
        batches.append(batch + late)
    return batches


def _features_online_vs_offline(lag_s: int) -> int:
    """Rows whose online features differ from the kernel over every row (pruning every batch)."""
    from fraudrisk.features import kernel
    from fraudrisk.scoring.vectors import batch_features

    rng = random.Random(7)
    rows, second = [], 1_500_000_000
    for tx_id in range(6_000):  # ~75 days, 8 customers, 3 terminals
        second += rng.randrange(60, 2_100)
        rows.append((tx_id, second, rng.randrange(8), rng.randrange(3), float(tx_id % 23)))
    ids, seconds, customers, terminals, amounts = (np.array(c) for c in zip(*rows, strict=True))
    unknown = np.full(len(rows), UNKNOWN_LABEL)
    offline = kernel.customer_features(customers, seconds, ids, amounts.astype(float), terminals)
    offline |= kernel.terminal_features(terminals, seconds, ids, unknown)
    position = {tx_id: k for k, tx_id in enumerate(ids.tolist())}
    names = sorted(offline)
    cache, differing = StateCache(None), 0
    for rows_of_batch in _interleaved_batches(rows, lag_s, 200):
        batch = batch_of(rows_of_batch)
        states = cache.read(batch.customer_id.tolist(), batch.terminal_id.tolist())
        online = batch_features(batch, states.customers, states.terminals, names)
        truth = np.array([[offline[n][position[t]] for n in names] for t in batch.transaction_id])
        differing += int((online != truth.astype(np.float32)).any(axis=1).sum())
        cache.apply(batch)
        cache.prune()
    return differing


def test_pruning_keeps_what_a_lagging_partition_still_reads() -> None:
    """A terminal's latest event may come from a partition two days ahead of another."""
    assert _features_online_vs_offline(lag_s=2 * DAY) == 0


def test_negative_control_pruning_at_the_bare_horizon_loses_window_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cache_module, "PRUNE_SLACK_SECONDS", 0)
    assert _features_online_vs_offline(lag_s=2 * DAY) > 0
    assert _features_online_vs_offline(lag_s=0) == 0  # in step, the bare horizon was enough
