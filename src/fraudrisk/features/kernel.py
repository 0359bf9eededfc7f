"""The feature kernel: vectorised numpy computation of every definition in one place.

The Spark batch job runs these functions on each entity partition (``mapInPandas``), and the
online path runs them on an entity's stored events plus the incoming transaction, so batch and
serving share the code as well as the definitions. Inputs may come in any order; outputs are
aligned with the inputs.

Windows are position-exact: rows are sorted by (entity, time, transaction_id) and a window is
found by binary search on one composite int64 key ``entity_rank << bits | shifted time``.
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
    """Rows sorted by (entity, time, id) with a composite key for window searches."""

    def __init__(self, entity: np.ndarray, seconds: np.ndarray, tx_id: np.ndarray) -> None:
        self.order = np.lexsort((tx_id, seconds, entity))
        ranks = np.unique(entity, return_inverse=True)[1].astype(np.int64)[self.order]
        shifted = seconds[self.order].astype(np.int64) - int(seconds.min(initial=0)) + _MAX_LOOKBACK
        bits = max(int(shifted.max(initial=1)).bit_length(), 1)
        if int(ranks.max(initial=0)).bit_length() + bits > 62:
            raise OverflowError("too many entities or too long a time span for one partition")
        self.key = (ranks << bits) | shifted
        self.rank = ranks
        self.seconds = seconds[self.order].astype(np.int64)
        self.position = np.arange(len(self.key))

    def first_after(self, lookback: int) -> np.ndarray:
        """Per row, the first position of its entity with time > own time - lookback."""
        return np.searchsorted(self.key, self.key - lookback, side="right")

    def previous_same_entity(self) -> np.ndarray:
        """Per row, whether the row before it (in order) belongs to the same entity."""
        same = np.zeros(len(self.key), dtype=bool)
        same[1:] = self.rank[1:] == self.rank[:-1]
        return same

    def unsort(self, values: np.ndarray) -> np.ndarray:
        """Back to input order."""
        out = np.empty_like(values)
        out[self.order] = values
        return out


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
) -> Columns:
    """Customer window features (baseline and ours) for every row.

    Args:
        customer: customer_id per row.
        seconds: Unix seconds per row.
        tx_id: transaction_id per row (orders same-second rows).
        amount: tx_amount per row.
        terminal: terminal_id per row (for terminal novelty).
    """
    rows = _Sorted(customer, seconds, tx_id)
    sums = _money_prefix_sum(amount[rows.order])
    out: Columns = {}
    for n in WINDOW_DAYS:
        start = rows.first_after(n * DAY)
        count = rows.position - start + 1
        out[f"customer_id_nb_tx_{n}day_window"] = count
        window_sum = (sums[rows.position + 1] - sums[start]) / MONEY_UNITS
        out[f"customer_id_avg_amount_{n}day_window"] = window_sum / count
    count30 = out["customer_id_nb_tx_30day_window"]
    horizon_start = rows.first_after(CUSTOMER_HORIZON_SECONDS)
    previous_sum = (sums[rows.position] - sums[horizon_start]) / MONEY_UNITS
    previous_mean = np.divide(
        previous_sum, count30 - 1, out=np.zeros(len(count30)), where=count30 > 1
    )
    sorted_amount = amount[rows.order].astype(np.float64)
    out["customer_id_amount_ratio_30day_window"] = np.divide(
        sorted_amount, previous_mean, out=np.ones(len(count30)), where=previous_mean > 0
    )
    gap = np.full(len(count30), SECONDS_SINCE_PREV_CAP, dtype=np.int64)
    has_previous = rows.previous_same_entity()
    gap[1:][has_previous[1:]] = np.diff(rows.seconds)[has_previous[1:]]
    out["customer_id_seconds_since_prev_tx"] = np.minimum(gap, SECONDS_SINCE_PREV_CAP)
    out["customer_id_nb_tx_1hour_window"] = rows.position - rows.first_after(VELOCITY_SECONDS) + 1
    result = {name: rows.unsort(values) for name, values in out.items()}
    result["customer_id_new_terminal_30day_window"] = _new_terminal(
        customer, terminal, seconds, tx_id
    )
    return result


def _new_terminal(
    customer: np.ndarray, terminal: np.ndarray, seconds: np.ndarray, tx_id: np.ndarray
) -> np.ndarray:
    customer_rank = np.unique(customer, return_inverse=True)[1].astype(np.int64).ravel()
    terminal_rank = np.unique(terminal, return_inverse=True)[1].astype(np.int64).ravel()
    pair = customer_rank * (int(terminal_rank.max(initial=0)) + 1) + terminal_rank
    rows = _Sorted(pair, seconds, tx_id)
    seen = rows.previous_same_entity()
    seen[1:] &= np.diff(rows.seconds) < CUSTOMER_HORIZON_SECONDS
    return rows.unsort((~seen).astype(np.int64))


def terminal_features(
    terminal: np.ndarray, seconds: np.ndarray, tx_id: np.ndarray, fraud: np.ndarray
) -> Columns:
    """Terminal count and risk over windows shifted back by the label delay.

    Args:
        terminal: terminal_id per row.
        seconds: Unix seconds per row.
        tx_id: transaction_id per row.
        fraud: label per row: 1 fraud, 0 genuine, ``UNKNOWN_LABEL`` (counted as 0) when not
            known yet; only labels at least the delay old are ever read.
    """
    rows = _Sorted(terminal, seconds, tx_id)
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
