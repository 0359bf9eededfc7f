"""Online features: entity state updates and the feature vector a scorer computes.

State (see :mod:`fraudrisk.features.state`) is a set of events per entity, keyed by
transaction id, so applying the same transaction or label twice changes nothing (a replayed
micro-batch after a crash cannot double-count). A scorer's vector is the shared kernel run
over the entity's stored events plus the incoming transaction: the same code and definitions
as the batch job, which is why online equals offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fraudrisk.features import kernel
from fraudrisk.features.definitions import (
    CUSTOMER_HORIZON_SECONDS,
    FEATURE_NAMES,
    TERMINAL_HORIZON_SECONDS,
    UNKNOWN_LABEL,
)


@dataclass
class CustomerState:
    """A customer's events in the horizon: time, id, amount, terminal."""

    event_seconds: list[int] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    event_amounts: list[float] = field(default_factory=list)
    event_terminals: list[int] = field(default_factory=list)

    def merge(self, seconds: int, tx_id: int, amount: float, terminal: int) -> None:
        """Add one transaction unless it is already there (idempotent)."""
        if tx_id in self.event_ids:
            return
        self.event_seconds.append(seconds)
        self.event_ids.append(tx_id)
        self.event_amounts.append(amount)
        self.event_terminals.append(terminal)

    def prune(self) -> None:
        """Keep the events a future transaction can still see, in (time, id) order."""
        _prune(self, CUSTOMER_HORIZON_SECONDS)


@dataclass
class TerminalState:
    """A terminal's events in the horizon: time, id and label (-1 until known)."""

    event_seconds: list[int] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    event_labels: list[int] = field(default_factory=list)

    def merge(self, seconds: int, tx_id: int, label: int = UNKNOWN_LABEL) -> None:
        """Add a transaction or record its label; a known label is never forgotten."""
        if tx_id in self.event_ids:
            index = self.event_ids.index(tx_id)
            self.event_labels[index] = max(self.event_labels[index], label)
            return
        self.event_seconds.append(seconds)
        self.event_ids.append(tx_id)
        self.event_labels.append(label)

    def prune(self) -> None:
        """Keep the events a future transaction can still see, in (time, id) order."""
        _prune(self, TERMINAL_HORIZON_SECONDS)


def _prune(state: CustomerState | TerminalState, horizon: int) -> None:
    if not state.event_seconds:
        return
    seconds, ids = np.asarray(state.event_seconds), np.asarray(state.event_ids)
    order = np.lexsort((ids, seconds))
    keep = order[seconds[order] > seconds.max() - horizon]
    for name in state.__dataclass_fields__:
        values = getattr(state, name)
        setattr(state, name, [values[i] for i in keep])


@dataclass(frozen=True)
class IncomingTransaction:
    """What a scorer knows of a transaction at its instant."""

    transaction_id: int
    seconds: int
    customer_id: int
    terminal_id: int
    tx_amount: float


def feature_vector(
    tx: IncomingTransaction, customer: CustomerState, terminal: TerminalState
) -> dict[str, float]:
    """Every feature of ``tx`` from its entities' state (events after ``tx`` are ignored)."""
    c_keep = [i for i, e in enumerate(customer.event_ids) if e != tx.transaction_id]
    t_keep = [i for i, e in enumerate(terminal.event_ids) if e != tx.transaction_id]
    c_seconds = np.array([customer.event_seconds[i] for i in c_keep] + [tx.seconds], np.int64)
    c_ids = np.array([customer.event_ids[i] for i in c_keep] + [tx.transaction_id], np.int64)
    c_amounts = np.array([customer.event_amounts[i] for i in c_keep] + [tx.tx_amount])
    c_terminals = np.array([customer.event_terminals[i] for i in c_keep] + [tx.terminal_id])
    values: dict[str, np.ndarray] = {"tx_amount": np.array([tx.tx_amount])}
    values |= kernel.calendar_features(np.array([tx.seconds]))
    customer_rows = kernel.customer_features(
        np.zeros(len(c_ids), np.int64), c_seconds, c_ids, c_amounts, c_terminals
    )
    values |= {name: column[-1:] for name, column in customer_rows.items()}
    t_seconds = np.array([terminal.event_seconds[i] for i in t_keep] + [tx.seconds], np.int64)
    t_ids = np.array([terminal.event_ids[i] for i in t_keep] + [tx.transaction_id], np.int64)
    t_labels = np.array([terminal.event_labels[i] for i in t_keep] + [UNKNOWN_LABEL], np.int64)
    terminal_rows = kernel.terminal_features(
        np.zeros(len(t_ids), np.int64), t_seconds, t_ids, t_labels
    )
    values |= {name: column[-1:] for name, column in terminal_rows.items()}
    return {name: float(values[name][0]) for name in FEATURE_NAMES}
