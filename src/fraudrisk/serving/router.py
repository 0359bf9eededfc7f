"""Traffic between the stable model and a candidate: canary, A/B and shadow, as KServe splits it.

* ``canary``: each request goes to the candidate with probability ``percent`` / 100 (random per
  request, as KServe's revision split does);
* ``ab``: each transaction goes to the candidate when a stable hash of its ``ab_key`` field
  (customer by default) falls under ``percent``, so a customer always meets the same variant;
* ``shadow``: the stable model answers every request; the candidate scores the same
  transactions afterwards, off the request path, and its results are only logged and measured.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fraudrisk.scoring.vectors import TransactionBatch
from fraudrisk.vocab import CANARY, SHADOW, STABLE, VARIANT_NAMES, TrafficMode

Mode = TrafficMode
AB_KEYS = ("customer_id", "terminal_id", "transaction_id")


@dataclass(frozen=True)
class TrafficSplit:
    """How requests are shared between the stable model and a candidate."""

    mode: Mode = CANARY
    percent: int = 0
    ab_key: str = "customer_id"
    seed: int | None = None

    def __post_init__(self) -> None:
        """Check the percentage and the A/B key.

        Raises:
            ValueError: If ``percent`` is outside 0–100 or ``ab_key`` is not a batch column.
        """
        if not 0 <= self.percent <= 100:
            raise ValueError(f"traffic percent must be within 0-100, got {self.percent}")
        if self.ab_key not in AB_KEYS:
            raise ValueError(f"ab_key must be one of {AB_KEYS}, got {self.ab_key!r}")

    @property
    def candidate_variant(self) -> str:
        """The candidate's variant name in responses and metrics."""
        return VARIANT_NAMES[self.mode]


@dataclass
class Assignment:
    """Which rows of a batch each variant answers, and whether a shadow scores them all."""

    rows: dict[str, npt.NDArray[np.int64]]
    shadow: bool = False


@dataclass
class Router:
    """Assigns each request (or transaction, for A/B) to a variant."""

    split: TrafficSplit
    has_candidate: bool
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.split.seed)

    def assign(self, batch: TransactionBatch) -> Assignment:
        """The rows each variant answers for this request."""
        every = np.arange(len(batch), dtype=np.int64)
        if not self.has_candidate:
            return Assignment({STABLE: every})
        if self.split.mode == SHADOW:
            return Assignment({STABLE: every}, shadow=True)
        if self.split.mode == CANARY:
            to_candidate = self._rng.random() * 100 < self.split.percent
            return Assignment({self.split.candidate_variant if to_candidate else STABLE: every})
        buckets = ab_buckets(getattr(batch, self.split.ab_key))
        candidate = buckets < self.split.percent
        rows = {STABLE: every[~candidate], self.split.candidate_variant: every[candidate]}
        return Assignment({name: r for name, r in rows.items() if len(r)})


def ab_buckets(keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """A stable bucket in [0, 100) per key (BLAKE2b of the decimal key, same on every host)."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(str(k).encode(), digest_size=8).digest(), "big") % 100
            for k in keys.tolist()
        ],
        dtype=np.int64,
    )
