"""Feature vectors of a batch of incoming transactions, computed in-process from entity state.

Each customer's stored events and the batch's transactions of that customer are put together
and run through the same feature kernel as the batch job, once for the whole batch: a
transaction sees its entity's history *and* the earlier transactions of the same batch, exactly
as the offline table does. An event already in the state with a batch transaction's id is the
same transaction (a retry) and is counted once.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fraudrisk.features import kernel
from fraudrisk.features.definitions import UNKNOWN_LABEL
from fraudrisk.features.online import CustomerState, TerminalState


@dataclass(frozen=True)
class TransactionBatch:
    """Incoming transactions as columns (one row per transaction)."""

    transaction_id: npt.NDArray[np.int64]
    seconds: npt.NDArray[np.int64]
    customer_id: npt.NDArray[np.int64]
    terminal_id: npt.NDArray[np.int64]
    tx_amount: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.transaction_id)

    def take(self, rows: npt.NDArray[np.int64]) -> TransactionBatch:
        """The sub-batch of the given row positions."""
        return TransactionBatch(
            self.transaction_id[rows], self.seconds[rows], self.customer_id[rows],
            self.terminal_id[rows], self.tx_amount[rows],
        )  # fmt: skip


def batch_features(
    batch: TransactionBatch,
    customers: Mapping[int, CustomerState],
    terminals: Mapping[int, TerminalState],
    names: Sequence[str],
) -> npt.NDArray[np.float32]:
    """The ``names`` features of every transaction of the batch, as a float32 matrix.

    Args:
        batch: The transactions.
        customers: Stored state of (at least) the batch's customers; a missing one = new.
        terminals: Stored state of (at least) the batch's terminals; a missing one = new.
        names: The feature columns wanted, in order.

    Returns:
        A matrix of shape ``(len(batch), len(names))``.

    Raises:
        KeyError: If a name is not a feature the kernel computes.
    """
    values: dict[str, np.ndarray] = {"tx_amount": batch.tx_amount.astype(np.float64)}
    values |= kernel.calendar_features(batch.seconds)
    values |= _customer_columns(batch, customers)
    values |= _terminal_columns(batch, terminals)
    matrix = np.empty((len(batch), len(names)), dtype=np.float32)
    for column, name in enumerate(names):
        matrix[:, column] = values[name]
    return matrix


def _history(
    batch_ids: npt.NDArray[np.int64],
    keys: npt.NDArray[np.int64],
    states: Mapping[int, CustomerState] | Mapping[int, TerminalState],
    fields: tuple[str, ...],
) -> dict[str, np.ndarray]:
    """Stored events of the batch's entities, as columns with an ``entity`` column."""
    found = [(key, states[key]) for key in set(keys.tolist()) if key in states]
    sizes = [len(state.event_ids) for _, state in found]
    columns = {
        name: np.fromiter(
            itertools.chain.from_iterable(getattr(state, name) for _, state in found),
            dtype=np.float64 if name == "event_amounts" else np.int64,
            count=sum(sizes),
        )
        for name in fields
    }
    columns["entity"] = np.repeat(np.array([key for key, _ in found], np.int64), sizes)
    keep = ~np.isin(columns["event_ids"], batch_ids)  # the same transaction scored again
    return {name: values[keep] for name, values in columns.items()}


def _customer_columns(
    batch: TransactionBatch, customers: Mapping[int, CustomerState]
) -> dict[str, np.ndarray]:
    fields = ("event_seconds", "event_ids", "event_amounts", "event_terminals")
    past = _history(batch.transaction_id, batch.customer_id, customers, fields)
    n_past = len(past["entity"])
    rows = kernel.customer_features(
        np.concatenate([past["entity"], batch.customer_id]),
        np.concatenate([past["event_seconds"], batch.seconds]).astype(np.int64),
        np.concatenate([past["event_ids"], batch.transaction_id]).astype(np.int64),
        np.concatenate([past["event_amounts"], batch.tx_amount]).astype(np.float64),
        np.concatenate([past["event_terminals"], batch.terminal_id]).astype(np.int64),
    )
    return {name: column[n_past:] for name, column in rows.items()}


def _terminal_columns(
    batch: TransactionBatch, terminals: Mapping[int, TerminalState]
) -> dict[str, np.ndarray]:
    fields = ("event_seconds", "event_ids", "event_labels")
    past = _history(batch.transaction_id, batch.terminal_id, terminals, fields)
    n_past = len(past["entity"])
    unknown = np.full(len(batch), UNKNOWN_LABEL, dtype=np.int64)
    rows = kernel.terminal_features(
        np.concatenate([past["entity"], batch.terminal_id]),
        np.concatenate([past["event_seconds"], batch.seconds]).astype(np.int64),
        np.concatenate([past["event_ids"], batch.transaction_id]).astype(np.int64),
        np.concatenate([past["event_labels"], unknown]).astype(np.int64),
    )
    return {name: column[n_past:] for name, column in rows.items()}
