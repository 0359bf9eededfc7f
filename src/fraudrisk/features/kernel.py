"""The feature kernel: vectorised numpy computation of every definition in one place.

The Spark batch job runs these functions on each entity partition (``mapInPandas``), and the
online path runs them on an entity's stored events plus the incoming transactions, so batch and
serving share the code as well as the definitions. Inputs may come in any order; outputs are
aligned with the inputs.

Windows are position-exact: rows are sorted by (entity, time, transaction_id) and a window is
found by binary search on one composite int64 key ``entity_rank << bits | shifted time``.

Every row is context (it is counted in the windows of later rows), but a caller may want the
outputs of only some rows, ``targets``: the online path wants its batch's transactions, not the
weeks of stored events they are computed over. The sort is of all rows; the per-row work
(window searches, sums, ratios, gaps) is done at the targets only, with the same arithmetic,
so a target's value is bit for bit its value in the full computation.
"""

from __future__ import annotations

import numpy as np

from fraudrisk.features.definitions import (
    CUSTOMER_HORIZON_SECONDS,
    DAY,
    LABEL_DELAY_DAYS,
    SECONDS_SINCE_PREV_CAP,
    TERMINAL_HORIZON_SECONDS,
    VELOCITY_SECONDS,
    WINDOW_DAYS,
)

Columns = dict[str, np.ndarray]
_MAX_LOOKBACK = TERMINAL_HORIZON_SECONDS


class _Sorted:
    """Rows sorted by (entity, time, id) with a composite key for window searches.

    ``at`` are the sorted positions whose outputs are wanted (ascending; every position when
    there are no targets) and :meth:`unsort` puts values computed at ``at`` in input order.
    """

    def __init__(
        self,
        entity: np.ndarray,
        seconds: np.ndarray,
        tx_id: np.ndarray,
        targets: np.ndarray | None = None,
    ) -> None:
        ranks = np.unique(entity, return_inverse=True)[1].astype(np.int64).ravel()
        shifted = seconds.astype(np.int64) - int(seconds.min(initial=0)) + _MAX_LOOKBACK
        bits = max(int(shifted.max(initial=1)).bit_length(), 1)
        if int(ranks.max(initial=0)).bit_length() + bits > 62:
            raise OverflowError("too many entities or too long a time span for one partition")
        key = (ranks << bits) | shifted
        self.order = _order_by_key_then_id(key, tx_id)
        self.key: np.ndarray = key[self.order]
        self.rank: np.ndarray = ranks[self.order]
        self.seconds = seconds[self.order].astype(np.int64)
        self.at, self._slot = _target_positions(self.order, targets)
        self._at_key: np.ndarray = self.key if targets is None else self.key[self.at]

    def first_after(self, lookback: int) -> np.ndarray:
        """Per target, the first position of its entity with time > own time - lookback."""
        return np.searchsorted(self.key, self._at_key - lookback, side="right")

    def previous(self) -> tuple[np.ndarray, np.ndarray]:
        """Per target, whether the row before it belongs to the same entity, and that row."""
        before = np.maximum(self.at - 1, 0)
        return (self.at > 0) & (self.rank[before] == self.rank[self.at]), before

    def unsort(self, values: np.ndarray) -> np.ndarray:
        """Values computed at ``at``, in input order (of the targets)."""
        out = np.empty_like(values)
        out[self._slot] = values
        return out


def _order_by_key_then_id(key: np.ndarray, tx_id: np.ndarray) -> np.ndarray:
    """``np.lexsort((tx_id, key))``, several times faster.

    One stable sort of the key (rows come grouped by entity and nearly in time order, which a
    stable sort exploits), then only the runs of equal keys (same entity, same second; rare)
    are sorted again by id. Equal (key, id) rows keep their input order, as in lexsort.
    """
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    equal_next = sorted_key[1:] == sorted_key[:-1]
    if equal_next.any():
        tied = np.zeros(len(order), dtype=bool)
        tied[1:] |= equal_next
        tied[:-1] |= equal_next
        where = np.flatnonzero(tied)
        order[where] = order[where][np.lexsort((tx_id[order[where]], sorted_key[where]))]
    return order


def _target_positions(
    order: np.ndarray, targets: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions of the targets (ascending), and the output slot of each."""
    if targets is None:
        return np.arange(len(order)), order
    targets = np.asarray(targets)
    if targets.dtype != np.bool_ or targets.shape != order.shape:
        raise ValueError(
            f"targets must be a boolean mask of the {len(order)} rows, "
            f"got {targets.dtype} of shape {targets.shape}"
        )
    at = np.flatnonzero(targets[order])
    slot_of_row = np.cumsum(targets) - 1  # a target's index among the targets, input order
    return at, slot_of_row[order[at]]


def _prefix_sum(values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values) + 1, dtype=np.float64)
    np.cumsum(values, out=out[1:])
    return out


#: Money is summed in exact integer milli-units: a window's sum never carries the rounding of
#: other rows (a float running total over many entities would), and is the same in any chunk.
MONEY_UNITS = 1_000


def _money_prefix_sum(amount: np.ndarray) -> np.ndarray:
    units = np.rint(amount.astype(np.float64) * MONEY_UNITS).astype(np.int64)
    out = np.zeros(len(units) + 1, dtype=np.int64)
    np.cumsum(units, out=out[1:])
    return out


def calendar_features(seconds: np.ndarray) -> Columns:
    """``tx_during_weekend`` and ``tx_during_night`` from Unix seconds (UTC)."""
    days = seconds // DAY
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    hour = (seconds % DAY) // 3_600
    return {
        "tx_during_weekend": (weekday >= 5).astype(np.int64),
        "tx_during_night": (hour <= 6).astype(np.int64),
    }


def customer_features(
    customer: np.ndarray,
    seconds: np.ndarray,
    tx_id: np.ndarray,
    amount: np.ndarray,
    terminal: np.ndarray,
    targets: np.ndarray | None = None,
) -> Columns:
    """Customer window features (baseline and ours) for every row, or for the targets.

    Args:
        customer: customer_id per row.
        seconds: Unix seconds per row.
        tx_id: transaction_id per row (orders same-second rows).
        amount: tx_amount per row.
        terminal: terminal_id per row (for terminal novelty).
        targets: Boolean mask of the rows whose features are wanted (None = every row); all
            rows are still counted in the windows. The outputs are then ``full[targets]``.

    Raises:
        ValueError: If ``targets`` is not a boolean mask of the rows.
    """
    rows = _Sorted(customer, seconds, tx_id, targets)
    at = rows.at
    sums = _money_prefix_sum(amount[rows.order])
    out: Columns = {}
    for n in WINDOW_DAYS:
        start = rows.first_after(n * DAY)
        count = at - start + 1
        out[f"customer_id_nb_tx_{n}day_window"] = count
        window_sum = (sums[at + 1] - sums[start]) / MONEY_UNITS
        out[f"customer_id_avg_amount_{n}day_window"] = window_sum / count
    count30 = out["customer_id_nb_tx_30day_window"]
    horizon_start = rows.first_after(CUSTOMER_HORIZON_SECONDS)
    previous_sum = (sums[at] - sums[horizon_start]) / MONEY_UNITS
    previous_mean = np.divide(
        previous_sum, count30 - 1, out=np.zeros(len(count30)), where=count30 > 1
    )
    own_amount = amount[rows.order[at]].astype(np.float64)
    out["customer_id_amount_ratio_30day_window"] = np.divide(
        own_amount, previous_mean, out=np.ones(len(count30)), where=previous_mean > 0
    )
    has_previous, before = rows.previous()
    gap = np.where(has_previous, rows.seconds[at] - rows.seconds[before], SECONDS_SINCE_PREV_CAP)
    out["customer_id_seconds_since_prev_tx"] = np.minimum(gap, SECONDS_SINCE_PREV_CAP)
    out["customer_id_nb_tx_1hour_window"] = at - rows.first_after(VELOCITY_SECONDS) + 1
    out["customer_id_new_terminal_30day_window"] = _new_terminal(rows, terminal)
    return {name: rows.unsort(values) for name, values in out.items()}


def _new_terminal(rows: _Sorted, terminal: np.ndarray) -> np.ndarray:
    """Per target of the customer ``rows``, 1 unless its customer used its terminal before.

    "Before" is within the horizon: the latest earlier row of the same (customer, terminal)
    pair is less than ``CUSTOMER_HORIZON_SECONDS`` older. The rows are already in (customer,
    time, id) order, so a stable sort by pair puts each pair's rows in (time, id) order.
    """
    terminal_rank = np.unique(terminal, return_inverse=True)[1].astype(np.int64).ravel()
    pair = rows.rank * (int(terminal_rank.max(initial=0)) + 1) + terminal_rank[rows.order]
    by_pair = np.argsort(pair, kind="stable")
    place = np.empty_like(by_pair)  # sorted position -> position in pair order
    place[by_pair] = np.arange(len(by_pair))
    at_place = place[rows.at]
    before = by_pair[np.maximum(at_place - 1, 0)]
    seen: np.ndarray = (at_place > 0) & (pair[before] == pair[rows.at])
    seen &= rows.seconds[rows.at] - rows.seconds[before] < CUSTOMER_HORIZON_SECONDS
    return (~seen).astype(np.int64)


def terminal_features(
    terminal: np.ndarray,
    seconds: np.ndarray,
    tx_id: np.ndarray,
    fraud: np.ndarray,
    targets: np.ndarray | None = None,
) -> Columns:
    """Terminal count and risk over windows shifted back by the label delay.

    Args:
        terminal: terminal_id per row.
        seconds: Unix seconds per row.
        tx_id: transaction_id per row.
        fraud: label per row: 1 fraud, 0 genuine, ``UNKNOWN_LABEL`` (counted as 0) when not
            known yet; only labels at least the delay old are ever read.
        targets: Boolean mask of the rows whose features are wanted (None = every row), as
            in :func:`customer_features`.

    Raises:
        ValueError: If ``targets`` is not a boolean mask of the rows.
    """
    rows = _Sorted(terminal, seconds, tx_id, targets)
    frauds = _prefix_sum((fraud[rows.order] == 1).astype(np.float64))
    delayed_end = rows.first_after(LABEL_DELAY_DAYS * DAY)  # first row inside the delay
    out: Columns = {}
    for n in WINDOW_DAYS:
        begin = rows.first_after((LABEL_DELAY_DAYS + n) * DAY)
        count = delayed_end - begin
        risk = np.divide(
            frauds[delayed_end] - frauds[begin], count, out=np.zeros(len(count)), where=count > 0
        )
        out[f"terminal_id_nb_tx_{n}day_window"] = count
        out[f"terminal_id_risk_{n}day_window"] = risk
    return {name: rows.unsort(values) for name, values in out.items()}


def all_features(
    customer: np.ndarray,
    terminal: np.ndarray,
    seconds: np.ndarray,
    tx_id: np.ndarray,
    amount: np.ndarray,
    fraud: np.ndarray,
) -> Columns:
    """Every feature for rows that hold complete customer and terminal histories."""
    out: Columns = {"tx_amount": amount.astype(np.float64)}
    out |= calendar_features(seconds)
    out |= customer_features(customer, seconds, tx_id, amount, terminal)
    out |= terminal_features(terminal, seconds, tx_id, fraud)
    return out
