"""Entity state: the events an online scorer needs to compute every feature at any instant.

Per customer, the transactions of the last 30 days (time, id, amount, terminal); per
terminal, those of the last 37 days (time, id, label — ``UNKNOWN_LABEL`` until the label
delay has passed). The feature kernel computed over a state plus the incoming transaction
gives exactly the batch feature row, because it only ever reads past events in the horizon.
"""

from __future__ import annotations

import posixpath

import numpy as np
import pyarrow as pa

from fraudrisk.features.definitions import (
    CUSTOMER_HORIZON_SECONDS,
    DAY,
    LABEL_DELAY_DAYS,
    TERMINAL_HORIZON_SECONDS,
    UNKNOWN_LABEL,
)

STATE_DIR = "_entity_state"
CUSTOMER_STATE_COLUMNS = ("event_seconds", "event_ids", "event_amounts", "event_terminals")
TERMINAL_STATE_COLUMNS = ("event_seconds", "event_ids", "event_labels")


def state_path(out_uri: str, entity: str) -> str:
    """Where the state of ``customer`` or ``terminal`` lives under a feature table."""
    return posixpath.join(out_uri, STATE_DIR, entity)


def entity_state(
    key: str,
    entity: np.ndarray,
    seconds: np.ndarray,
    columns: dict[str, np.ndarray],
    as_of: int,
    horizon: int,
) -> pa.Table:
    """One row per entity with its events in ``(as_of - horizon, as_of]`` as lists.

    Args:
        key: Join key column name, e.g. ``customer_id``.
        entity: Entity id per event.
        seconds: Unix seconds per event.
        columns: Other event fields by output name (``event_ids`` must be among them).
        as_of: The state's time (the lake's last transaction).
        horizon: Seconds of history kept.
    """
    keep = seconds > as_of - horizon
    entity, seconds = entity[keep], seconds[keep]
    order = np.lexsort((columns["event_ids"][keep], seconds, entity))
    entity = entity[order]
    starts = np.flatnonzero(np.r_[True, entity[1:] != entity[:-1]])
    offsets = pa.array(np.r_[starts, len(entity)].astype(np.int32))
    lists = {"event_seconds": pa.ListArray.from_arrays(offsets, pa.array(seconds[order]))}
    for name, values in columns.items():
        lists[name] = pa.ListArray.from_arrays(offsets, pa.array(values[keep][order]))
    stamp = np.full(len(starts), np.datetime64(int(as_of), "s").astype("datetime64[us]"))
    return pa.table({key: entity[starts], "state_as_of": stamp, **lists})


def states_as_of(rows: pa.Table, seconds: np.ndarray, fraud: np.ndarray) -> dict[str, pa.Table]:
    """Customer and terminal state as of the last transaction of ``rows``.

    ``rows`` must hold every transaction of the last 37 days before that moment.
    """
    as_of = int(seconds.max())
    ids = rows["transaction_id"].to_numpy()
    known = seconds <= as_of - LABEL_DELAY_DAYS * DAY
    labels = np.where(known, fraud, UNKNOWN_LABEL).astype(np.int64)
    customer = entity_state(
        "customer_id",
        rows["customer_id"].to_numpy(),
        seconds,
        {
            "event_ids": ids,
            "event_amounts": rows["tx_amount"].to_numpy(),
            "event_terminals": rows["terminal_id"].to_numpy(),
        },
        as_of,
        CUSTOMER_HORIZON_SECONDS,
    )
    terminal = entity_state(
        "terminal_id",
        rows["terminal_id"].to_numpy(),
        seconds,
        {"event_ids": ids, "event_labels": labels},
        as_of,
        TERMINAL_HORIZON_SECONDS,
    )
    return {"customer": customer, "terminal": terminal}
