"""Entity state kept in the stream scorer's memory, read through from the online store.

The transactions topic is keyed by customer, so a scorer instance sees every transaction of
the customers of its partitions: their state is exact in memory once seeded from the online
store (first sight) and updated with each scored transaction. Terminals span partitions, so a
terminal's state is re-read from the online store (kept fresh by the stream feature job) once
it is older than ``terminal_ttl_s``, then updated locally. Merges are idempotent by
transaction id: a batch replayed after a crash cannot double-count.

The cache also knows each entity's latest event time. A transaction later than all of its
entity's events cannot be one of them (a replayed transaction keeps its time), so it is appended
without the state's search by id; an earlier or same-time one goes through the idempotent
:meth:`~fraudrisk.features.online.CustomerState.merge`. In a live stream nearly every
transaction is the later kind.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from itertools import compress

import numpy as np

from fraudrisk.features.definitions import (
    CUSTOMER_HORIZON_SECONDS,
    DAY,
    TERMINAL_HORIZON_SECONDS,
    UNKNOWN_LABEL,
)
from fraudrisk.features.online import CustomerState, TerminalState
from fraudrisk.scoring.state_reader import EntityStates, StateReader
from fraudrisk.scoring.vectors import TransactionBatch

#: Each entity's events are pruned once every this many merged transactions (~5 days of the
#: handbook's stream: states hold at most ~1/6 more events than the horizons need). The work is
#: spread over the batches, a few entities each, so that no batch pays for a whole pass.
PRUNE_EVERY = 50_000
#: Events are kept this much longer than the horizons. A transaction's windows reach back from
#: its own time, not from its entity's latest event, and the partitions one scorer consumes
#: advance unevenly: a terminal's latest event may come from a partition days (of event time)
#: ahead while replaying a backlog, or a replayed batch may be older than what came since.
PRUNE_SLACK_SECONDS = 7 * DAY
_NEVER = -(2**63)


class StateCache:
    """A :class:`~fraudrisk.scoring.state_reader.StateReader` caching another one."""

    def __init__(self, backing: StateReader | None, terminal_ttl_s: float = 60.0) -> None:
        """Cache ``backing`` (None = start empty, e.g. a fresh replay)."""
        self.backing = backing
        self.terminal_ttl_s = terminal_ttl_s
        self.customers: dict[int, CustomerState] = {}
        self.terminals: dict[int, TerminalState] = {}
        self._terminal_read_at: dict[int, float] = {}
        self._customer_latest: dict[int, int] = {}
        self._terminal_latest: dict[int, int] = {}
        self._to_prune: deque[tuple[bool, int]] = deque()  # (is a customer, id), round robin
        self._pass_size = 0  # entities in the current round

    def read(self, customer_ids: Iterable[int], terminal_ids: Iterable[int]) -> EntityStates:
        """States of the ids, fetching the unseen (and stale terminals) in one backing read."""
        customers, terminals = set(customer_ids), set(terminal_ids)
        now = time.monotonic()
        missing_c = [c for c in customers if c not in self.customers]
        ttl, read_at = self.terminal_ttl_s, self._terminal_read_at
        stale_t = [t for t in terminals if now - read_at.get(t, -np.inf) > ttl]
        if (missing_c or stale_t) and self.backing is not None:
            fresh = self.backing.read(missing_c, stale_t)
            for key, customer in fresh.customers.items():
                self.customers[key] = customer
                self._customer_latest[key] = max(customer.event_seconds, default=_NEVER)
            for key, terminal in fresh.terminals.items():
                self._refresh_terminal(key, terminal)
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
            for seconds, tx_id, label in zip(
                local.event_seconds, local.event_ids, local.event_labels, strict=True
            ):
                if tx_id not in known:
                    fresh.merge(seconds, tx_id, label)
        self.terminals[key] = fresh
        self._terminal_latest[key] = max(fresh.event_seconds, default=_NEVER)

    def apply(self, batch: TransactionBatch) -> None:
        """Merge scored transactions into their entities' states (idempotent)."""
        customers, terminals = self.customers, self.terminals
        c_latest, t_latest = self._customer_latest, self._terminal_latest
        for tx_id, seconds, customer_id, terminal_id, amount in zip(
            batch.transaction_id.tolist(),
            batch.seconds.tolist(),
            batch.customer_id.tolist(),
            batch.terminal_id.tolist(),
            batch.tx_amount.tolist(),
            strict=True,
        ):
            customer = customers.get(customer_id)
            if customer is None:
                customer = customers[customer_id] = CustomerState()
            if seconds > c_latest.get(customer_id, _NEVER):  # new for sure: append
                customer.event_seconds.append(seconds)
                customer.event_ids.append(tx_id)
                customer.event_amounts.append(amount)
                customer.event_terminals.append(terminal_id)
                c_latest[customer_id] = seconds
            else:
                customer.merge(seconds, tx_id, amount, terminal_id)
            self._merge_terminal(terminals, t_latest, terminal_id, seconds, tx_id, UNKNOWN_LABEL)
        self._prune_some(len(batch))

    @staticmethod
    def _merge_terminal(
        terminals: dict[int, TerminalState],
        latest: dict[int, int],
        key: int,
        seconds: int,
        tx_id: int,
        label: int,
    ) -> None:
        terminal = terminals.get(key)
        if terminal is None:
            terminal = terminals[key] = TerminalState()
        if seconds > latest.get(key, _NEVER):  # new for sure: append
            terminal.event_seconds.append(seconds)
            terminal.event_ids.append(tx_id)
            terminal.event_labels.append(label)
            latest[key] = seconds
        else:
            terminal.merge(seconds, tx_id, label)

    def apply_labels(self, labels: Iterable[tuple[int, int, int, int]]) -> None:
        """Record fraud labels ``(terminal_id, seconds, transaction_id, label)``."""
        for terminal, seconds, tx_id, label in labels:
            self._merge_terminal(
                self.terminals, self._terminal_latest, terminal, seconds, tx_id, label
            )

    def prune(self) -> None:
        """Drop every event no future transaction can see (see :meth:`_prune_some`)."""
        self._to_prune.clear()
        self._prune_some(PRUNE_EVERY)

    def _prune_some(self, merged: int) -> None:
        """Prune the share of the entities due after ``merged`` more transactions.

        An event is dropped once it is older than the horizon (plus :data:`PRUNE_SLACK_SECONDS`)
        before its entity's latest event; the kept events stay in their order (the feature
        kernel sorts them itself).
        """
        if not self._to_prune:
            self._to_prune.extend((True, key) for key in self.customers)
            self._to_prune.extend((False, key) for key in self.terminals)
            self._pass_size = len(self._to_prune)
        share = math.ceil(self._pass_size * min(merged / PRUNE_EVERY, 1.0))
        customer_kept = CUSTOMER_HORIZON_SECONDS + PRUNE_SLACK_SECONDS
        terminal_kept = TERMINAL_HORIZON_SECONDS + PRUNE_SLACK_SECONDS
        for _ in range(min(share, len(self._to_prune))):
            is_customer, key = self._to_prune.popleft()
            if is_customer and key in self.customers:
                cutoff = self._customer_latest.get(key, _NEVER) - customer_kept
                _drop_older(self.customers[key], cutoff)
            elif not is_customer and key in self.terminals:
                cutoff = self._terminal_latest.get(key, _NEVER) - terminal_kept
                _drop_older(self.terminals[key], cutoff)

    def forget_customers(self, keep: Iterable[int] | None = None) -> None:
        """Drop customer states (all, or all but ``keep``): after a partition rebalance."""
        kept = set(keep or ())
        self.customers = {k: v for k, v in self.customers.items() if k in kept}
        self._customer_latest = {k: v for k, v in self._customer_latest.items() if k in kept}


def _drop_older(state: CustomerState | TerminalState, cutoff: int) -> None:
    """Keep the events after ``cutoff`` (seconds), every field alike."""
    seconds = state.event_seconds
    if not seconds or min(seconds) > cutoff:
        return
    keep = [second > cutoff for second in seconds]
    for name in state.__dataclass_fields__:
        setattr(state, name, list(compress(getattr(state, name), keep)))
