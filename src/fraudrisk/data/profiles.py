"""Customer and terminal profiles and the terminals each customer can reach.

Reachable terminals are stored in CSR form: the terminals of customer ``c`` are
``terminal_ids[offsets[c]:offsets[c + 1]]``, ascending.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Profiles:
    """Customers (x, y, mean_amount, mean_nb_tx_per_day), terminals (x, y), reachability."""

    customers: np.ndarray
    terminals: np.ndarray
    offsets: np.ndarray
    terminal_ids: np.ndarray

    def reachable(self, customer_id: int) -> np.ndarray:
        """The terminal ids a customer can reach, ascending."""
        return self.terminal_ids[self.offsets[customer_id] : self.offsets[customer_id + 1]]


def reachable_terminals_exact(
    customer_xy: np.ndarray, terminal_xy: np.ndarray, radius: float, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Terminals strictly within ``radius`` of each customer, computed as the book does.

    The book evaluates ``sqrt(sum(square(customer - terminals), axis=1)) < r`` per customer;
    the same float operations on a block of customers give bit-identical distances.

    Returns:
        ``(offsets, terminal_ids)`` in CSR form.
    """
    counts: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    for start in range(0, len(customer_xy), chunk):
        block = customer_xy[start : start + chunk]
        dist = np.sqrt(np.sum(np.square(block[:, None, :] - terminal_xy[None, :, :]), axis=2))
        rows, cols = np.nonzero(dist < radius)
        counts.append(np.bincount(rows, minlength=len(block)))
        ids.append(cols)
    return _csr(counts, ids)


def _csr(counts: list[np.ndarray], ids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    all_counts = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(len(all_counts) + 1, dtype=np.int64)
    np.cumsum(all_counts, out=offsets[1:])
    terminal_ids = np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, dtype=np.int64)
    return offsets, terminal_ids
