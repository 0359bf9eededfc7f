"""Entity state kept in the stream scorer's memory, read through from the online store.

The transactions topic is keyed by customer, so a scorer instance sees every transaction of
the customers of its partitions: their state is exact in memory once seeded from the online
store (first sight) and updated with each scored transaction. Terminals span partitions, so a
terminal's state is re-read from the online store (kept fresh by the stream feature job) once
it is older than ``terminal_ttl_s``, then updated locally. Merges are idempotent by
transaction id: a batch replayed after a crash cannot double-count.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from fraudrisk.features.online import CustomerState, TerminalState
from fraudrisk.inference.features import TransactionBatch
from fraudrisk.inference.state import EntityStates, StateReader

PRUNE_EVERY = 64


class StateCache:
    """A :class:`~fraudrisk.inference.state.StateReader` caching another one."""

    def __init__(self, backing: StateReader | None, terminal_ttl_s: float = 60.0) -> None:
        """Cache ``backing`` (None = start empty, e.g. a fresh replay)."""
        self.backing = backing
        self.terminal_ttl_s = terminal_ttl_s
        self.customers: dict[int, CustomerState] = {}
        self.terminals: dict[int, TerminalState] = {}
        self._terminal_read_at: dict[int, float] = {}
        self._merges = 0

    def read(self, customer_ids: Iterable[int], terminal_ids: Iterable[int]) -> EntityStates:
        """States of the ids, fetching the unseen (and stale terminals) in one backing read."""
        customers, terminals = set(customer_ids), set(terminal_ids)
        now = time.monotonic()
        missing_c = [c for c in customers if c not in self.customers]
        ttl, read_at = self.terminal_ttl_s, self._terminal_read_at
        stale_t = [t for t in terminals if now - read_at.get(t, -np.inf) > ttl]
        if (missing_c or stale_t) and self.backing is not None:
            fresh = self.backing.read(missing_c, stale_t)
            self.customers.update(fresh.customers)
            for key, state in fresh.terminals.items():
                self._refresh_terminal(key, state)
        for key in stale_t:
            self._terminal_read_at[key] = now
        return EntityStates(
            {c: self.customers[c] for c in customers if c in self.customers},
            {t: self.terminals[t] for t in terminals if t in self.terminals},
        )

    def _refresh_terminal(self, key: int, fresh: TerminalState) -> None:
        """Take the store's events and labels, keeping local events it has not seen yet."""
        local = self.terminals.get(key)
        if local is not None:
            known = set(fresh.event_ids)
            for seconds, tx_id, label in zip(local.event_seconds, local.event_ids,
                                             local.event_labels, strict=True):  # fmt: skip
                if tx_id not in known:
                    fresh.merge(seconds, tx_id, label)
        self.terminals[key] = fresh

    def apply(self, batch: TransactionBatch) -> None:
        """Merge scored transactions into their entities' states (idempotent)."""
        for tx_id, seconds, customer, terminal, amount in zip(
            batch.transaction_id.tolist(), batch.seconds.tolist(), batch.customer_id.tolist(),
            batch.terminal_id.tolist(), batch.tx_amount.tolist(), strict=True,
        ):  # fmt: skip
            self.customers.setdefault(customer, CustomerState()).merge(seconds, tx_id, amount,
                                                                       terminal)  # fmt: skip
            self.terminals.setdefault(terminal, TerminalState()).merge(seconds, tx_id)
        self._merges += 1
        if self._merges % PRUNE_EVERY == 0:
            self.prune()

    def apply_labels(self, labels: Iterable[tuple[int, int, int, int]]) -> None:
        """Record fraud labels ``(terminal_id, seconds, transaction_id, label)``."""
        for terminal, seconds, tx_id, label in labels:
            self.terminals.setdefault(terminal, TerminalState()).merge(seconds, tx_id, label)

    def prune(self) -> None:
        """Drop events no future transaction can see."""
        for customer in self.customers.values():
            customer.prune()
        for terminal in self.terminals.values():
            terminal.prune()

    def forget_customers(self, keep: Iterable[int] | None = None) -> None:
        """Drop customer states (all, or all but ``keep``): after a partition rebalance."""
        kept = set(keep or ())
        self.customers = {k: v for k, v in self.customers.items() if k in kept}
