"""The kernel's targeted outputs are its full outputs at the targets, bit for bit.

The online path asks the kernel for the features of a batch's rows only, over the batch plus
weeks of stored events; the batch job asks for every row. Random inputs built to hit the edges
(rows exactly on and next to every window bound, same-second rows of one entity, duplicated
rows, entities with one row, amounts in cents, labels 0/1/unknown) are run both ways and must
agree exactly: same dtype, same values, no NaN. Negative controls show the comparison catches a
window bound off by one second and a bound closed instead of open.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fraudrisk.features import kernel
from fraudrisk.features.definitions import (
    CUSTOMER_HORIZON_SECONDS,
    DAY,
    LABEL_DELAY_DAYS,
    UNKNOWN_LABEL,
    VELOCITY_SECONDS,
    WINDOW_DAYS,
)

NOW = 1_700_000_000
_BOUNDS = (
    0,
    VELOCITY_SECONDS,
    CUSTOMER_HORIZON_SECONDS,
    *(n * DAY for n in WINDOW_DAYS),
    *((LABEL_DELAY_DAYS + n) * DAY for n in (0, *WINDOW_DAYS)),
)
#: Seconds before NOW on and next to every window bound (rows at NOW see these exactly there).
EDGES = np.array(sorted({bound + step for bound in _BOUNDS for step in (-1, 0, 1)}))
Rows = dict[str, np.ndarray]


def random_rows(rng: np.random.Generator, n: int) -> Rows:
    """``n`` kernel input rows: ~8 per customer, each customer at a few terminals."""
    customer = rng.integers(0, n // 8 + 1, n)
    single = rng.random(n) < 0.05  # customers with one row
    customer[single] = 1_000_000 + np.arange(single.sum())
    terminal = (customer * 3 + rng.integers(0, 3, n)) % (n // 4 + 1)  # repeats and sharing
    offsets = rng.integers(-DAY, 45 * DAY, n)
    on_edge = rng.random(n) < 0.4
    offsets[on_edge] = rng.choice(EDGES, on_edge.sum())
    seconds = NOW - offsets
    tx_id = rng.permutation(n) * 3 + 100
    for share, same_id in ((0.1, False), (0.02, True)):  # same-second rows; duplicated rows
        rows = np.flatnonzero(rng.random(n) < share)
        source = rng.integers(0, n, len(rows))
        for column in (seconds, customer, terminal) + ((tx_id,) if same_id else ()):
            column[rows] = column[source]
    return {
        "customer": customer,
        "terminal": terminal,
        "seconds": seconds,
        "tx_id": tx_id,
        "amount": rng.integers(0, 50_000, n) / 100,  # cents
        "fraud": rng.choice([0, 1, UNKNOWN_LABEL], n),
    }


def customer_columns(rows: Rows, targets: np.ndarray | None = None) -> kernel.Columns:
    return kernel.customer_features(
        rows["customer"],
        rows["seconds"],
        rows["tx_id"],
        rows["amount"],
        rows["terminal"],
        targets=targets,
    )


def terminal_columns(rows: Rows, targets: np.ndarray | None = None) -> kernel.Columns:
    return kernel.terminal_features(
        rows["terminal"], rows["seconds"], rows["tx_id"], rows["fraud"], targets=targets
    )


def every_column(rows: Rows, targets: np.ndarray | None = None) -> kernel.Columns:
    return customer_columns(rows, targets) | terminal_columns(rows, targets)


def mismatched(full: kernel.Columns, targeted: kernel.Columns, targets: np.ndarray) -> list[str]:
    """The columns whose targeted values are not the full ones at the targets, bit for bit."""
    assert list(targeted) == list(full)
    return [
        name
        for name, column in full.items()
        if targeted[name].dtype != column.dtype
        or not np.array_equal(targeted[name], column[targets])
    ]


def masks(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Target sets: a batch after its history (as online), random rows, all, none, one."""
    tail = np.zeros(n, dtype=bool)
    tail[int(rng.integers(0, n + 1)) :] = True
    one = np.zeros(n, dtype=bool)
    one[int(rng.integers(0, n))] = True
    return {
        "batch after history": tail,
        "random rows": rng.random(n) < rng.uniform(0.05, 0.95),
        "all (no history)": np.ones(n, dtype=bool),
        "none": np.zeros(n, dtype=bool),
        "one row": one,
    }


@pytest.mark.parametrize("seed", range(8))
def test_targeted_outputs_are_the_full_outputs_at_the_targets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, int(rng.integers(200, 3_000)))
    full = every_column(rows)
    for name, column in full.items():
        assert column.dtype in (np.int64, np.float64), name
        assert np.isfinite(column).all(), name
    for label, targets in masks(rng, len(rows["seconds"])).items():
        assert mismatched(full, every_column(rows, targets), targets) == [], label


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_inputs(n: int) -> None:
    rows = random_rows(np.random.default_rng(n), n)
    full = every_column(rows)
    for targets in masks(np.random.default_rng(n), n).values():
        assert mismatched(full, every_column(rows, targets), targets) == []


def test_no_rows_no_targets() -> None:
    rows = random_rows(np.random.default_rng(0), 0)
    targeted = every_column(rows, np.zeros(0, dtype=bool))
    assert mismatched(every_column(rows), targeted, np.zeros(0, dtype=bool)) == []


def _wider_by_a_second(rows: kernel._Sorted, lookback: int) -> np.ndarray:
    return np.searchsorted(rows.key, rows._at_key - lookback - 1, side="right")


def _closed_bound(rows: kernel._Sorted, lookback: int) -> np.ndarray:
    return np.searchsorted(rows.key, rows._at_key - lookback, side="left")


@pytest.mark.parametrize("mutant", [_wider_by_a_second, _closed_bound])
def test_negative_control_a_bound_off_by_one_is_caught(
    mutant: Callable[[kernel._Sorted, int], np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The targeted path computed with a wrong window bound differs from the full one."""
    rng = np.random.default_rng(0)
    rows = random_rows(rng, 2_000)
    targets = masks(rng, 2_000)["random rows"]
    full = every_column(rows)
    monkeypatch.setattr(kernel._Sorted, "first_after", mutant)
    wrong = mismatched(full, every_column(rows, targets), targets)
    assert "customer_id_nb_tx_1day_window" in wrong
    assert "terminal_id_nb_tx_7day_window" in wrong


@pytest.mark.parametrize("seed", range(4))
def test_the_sort_is_lexsort_by_entity_time_and_id(seed: int) -> None:
    """The key sort with its tie pass orders rows exactly as ``np.lexsort`` (ties included)."""
    rows = random_rows(np.random.default_rng(seed), 3_000)
    sorted_rows = kernel._Sorted(rows["customer"], rows["seconds"], rows["tx_id"])
    expected = np.lexsort((rows["tx_id"], rows["seconds"], rows["customer"]))
    key = rows["customer"][expected] * 10**10 + rows["seconds"][expected]
    assert (key[1:] == key[:-1]).sum() > 10  # the inputs do hold same-second rows
    np.testing.assert_array_equal(sorted_rows.order, expected)


@pytest.mark.parametrize(
    "targets", [np.ones(5, dtype=np.int64), np.ones(4, dtype=bool), np.ones((5, 1), dtype=bool)]
)
def test_targets_must_be_a_boolean_mask_of_the_rows(targets: np.ndarray) -> None:
    rows = random_rows(np.random.default_rng(0), 5)
    with pytest.raises(ValueError, match="boolean mask of the 5 rows"):
        customer_columns(rows, targets)
    with pytest.raises(ValueError, match="boolean mask of the 5 rows"):
        terminal_columns(rows, targets)
