"""The single-transaction fast paths equal the general ones, value for value.

``single_features`` (plain Python over one entity's events) against the batch kernel, and the
numpy tree walker against ``Booster.inplace_predict``, on the registered test model, on real
states and on random ones built to hit the edges: same-second events, window boundaries to the
second, amounts on a half milli-unit, retries, events later than the transaction, unknown
entities, missing feature values.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pytest
from tests.unit.scoring.served import Served

from fraudrisk.features.definitions import DAY, FEATURE_NAMES, LABEL_DELAY_DAYS
from fraudrisk.features.online import CustomerState, TerminalState
from fraudrisk.scoring import trees
from fraudrisk.scoring.model import load_model
from fraudrisk.scoring.vectors import TransactionBatch, batch_features, single_features

NOW = 1_700_000_000


def one(batch: TransactionBatch, row: int) -> TransactionBatch:
    return batch.take(np.array([row]))


def test_one_transaction_equals_the_kernel_on_the_day_s_states(served: Served) -> None:
    states = served.states.read(
        served.batch.customer_id.tolist(), served.batch.terminal_id.tolist()
    )
    for row in range(len(served.batch)):
        single = one(served.batch, row)
        expected = batch_features(single, states.customers, states.terminals, FEATURE_NAMES)
        got = single_features(single, states.customers, states.terminals, FEATURE_NAMES)
        assert got.dtype == np.float32 and got.shape == (1, len(FEATURE_NAMES))
        np.testing.assert_array_equal(got, expected)


def _random_case(rng: np.random.Generator) -> tuple[TransactionBatch, CustomerState, TerminalState]:
    """A transaction at NOW and ~60 + ~40 events around the windows' edges."""
    edges = [0, 1, 3_600, 3_601, DAY, DAY + 1, 7 * DAY, 30 * DAY, 30 * DAY - 1, 31 * DAY]
    delayed = [(LABEL_DELAY_DAYS + n) * DAY + d for n in (0, 1, 7, 30) for d in (-1, 0, 1)]

    def offsets(n: int, special: list[int]) -> list[int]:
        spread = rng.integers(-3_600, 38 * DAY, size=n).tolist()
        return [NOW - s for s in spread + rng.choice(special, size=n // 3).tolist()]

    tx_id = int(rng.integers(1_000, 2_000))
    seconds = offsets(50, edges)
    ids = rng.choice(np.arange(100, 900), size=len(seconds), replace=False).tolist()
    if rng.random() < 0.5:
        ids[0], seconds[0] = tx_id, NOW  # the transaction itself is already there (a retry)
    amounts = (rng.integers(0, 200_000, size=len(seconds)) / 1000 + 0.0005).tolist()
    terminals = rng.integers(1, 6, size=len(seconds)).tolist()
    customer = CustomerState(seconds, ids, amounts, terminals)
    t_seconds = offsets(30, delayed)
    t_ids = rng.choice(np.arange(900, 1_000), size=len(t_seconds), replace=False).tolist()
    terminal = TerminalState(t_seconds, t_ids, rng.choice([-1, 0, 1], size=len(t_seconds)).tolist())
    batch = TransactionBatch(
        np.array([tx_id]),
        np.array([NOW]),
        np.array([7]),
        np.array([int(rng.integers(1, 6))]),
        np.array([float(rng.choice([0.0005, 12.3445, 99.99, 0.0]))]),
    )
    return batch, customer, terminal


@pytest.mark.parametrize("seed", range(6))
def test_one_transaction_equals_the_kernel_on_edge_states(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(50):
        batch, customer, terminal = _random_case(rng)
        for customers, terminals in (
            ({7: customer}, {int(batch.terminal_id[0]): terminal}),
            ({}, {}),
        ):
            expected = batch_features(batch, customers, terminals, FEATURE_NAMES)
            got = single_features(batch, customers, terminals, FEATURE_NAMES)
            np.testing.assert_array_equal(got, expected)


def test_single_features_refuses_a_batch(served: Served) -> None:
    with pytest.raises(ValueError, match="one transaction"):
        single_features(served.batch.take(np.arange(2)), {}, {}, FEATURE_NAMES)


# ------------------------------------------------------------------------------ the walker
@pytest.fixture(scope="module")
def booster(served: Served) -> Any:
    from fraudrisk.scoring.model import _load

    _card, inner = _load(served.settings, "models:/fraud-risk/1")
    found = inner.base_model.get_booster()
    found.set_param({"nthread": 1})
    return found


def _matrix(served: Served) -> np.ndarray:
    states = served.states.read(
        served.batch.customer_id.tolist(), served.batch.terminal_id.tolist()
    )
    return batch_features(served.batch, states.customers, states.terminals, FEATURE_NAMES)


def test_the_walker_equals_the_booster_float_for_float(served: Served, booster: Any) -> None:
    walked = trees.walked_probability(booster, booster.num_features())
    assert walked is not None
    rng = np.random.default_rng(1)
    noisy = rng.normal(0, 50, size=(300, booster.num_features())).astype(np.float32)
    noisy[rng.random(noisy.shape) < 0.1] = np.nan
    for matrix in (_matrix(served), noisy):
        expected = np.asarray(booster.inplace_predict(matrix), dtype=np.float64)
        rows = [walked(matrix[i : i + 1])[0] for i in range(len(matrix))]
        np.testing.assert_array_equal(np.array(rows), expected)
        np.testing.assert_array_equal(walked(matrix), expected)  # > MAX_WALKED_ROWS: XGBoost


def test_the_served_model_answers_as_the_booster_and_calibration(
    served: Served, booster: Any
) -> None:
    from fraudrisk.scoring.model import _calibration_mapping, _load

    _card, inner = _load(served.settings, "models:/fraud-risk/1")
    mapping = _calibration_mapping(inner)
    assert mapping is not None
    matrix = _matrix(served)[:40]
    expected = np.clip(mapping(booster.inplace_predict(matrix).astype(np.float64)), 0, 1)
    model = load_model(served.settings, "models:/fraud-risk/1")
    np.testing.assert_array_equal(model.probability(matrix), expected)


def test_a_walker_that_differs_is_not_used(
    booster: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = trees._libm

    def off_by_a_little(name: str) -> Any:
        function = real(name)
        return (lambda x: function(x) * (1 + 1e-6)) if name == "expf" else function

    monkeypatch.setattr(trees, "_libm", off_by_a_little)
    with caplog.at_level(logging.WARNING):
        assert trees.walked_probability(booster, booster.num_features()) is None
    assert "differs from XGBoost" in caplog.text


def test_models_the_walker_does_not_cover_stay_on_xgboost() -> None:
    import xgboost

    rng = np.random.default_rng(0)
    x, y = rng.random((200, 4)), rng.integers(0, 3, 200)
    multi = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(x, y).get_booster()
    assert trees.tree_arrays(multi) is None
    raw = xgboost.train(
        {"objective": "binary:logitraw", "max_depth": 2},
        xgboost.DMatrix(x, label=y > 0),
        num_boost_round=3,
    )
    assert trees.walked_probability(raw, 4) is None


def test_xgboost_s_base_margin_is_the_float32_logit() -> None:
    assert trees._logit32(0.5) == 0.0
    assert math.isclose(float(trees._logit32(0.1)), math.log(0.1 / 0.9), rel_tol=1e-6)
