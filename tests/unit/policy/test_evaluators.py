"""The scalar and vectorised evaluators agree on every expression and every row (property test).

Hypothesis writes random well-typed expressions *as text* (so the parser and checker are in the
loop) and random batches — NaN, infinities, zeros (division), missing texts, any hour — and
each row's scalar result must equal the vectorised result at that row.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudrisk.policy.checker import check_condition, type_of
from fraudrisk.policy.expressions import parse
from fraudrisk.policy.inputs import BatchColumns, PolicyBatch, RowBuilder
from fraudrisk.policy.scalar import compile_scalar
from fraudrisk.policy.syntax import names_in
from fraudrisk.policy.types import Environment
from fraudrisk.policy.vector import compile_vector

ENV = Environment.standard()
NUMBERS = ("amount", "risk", "tx_time_seconds", "customer_id_nb_tx_1day_window")
TEXTS = ("channel", "country")
REASON_FEATURES = ("tx_amount", "terminal_id_risk_7day_window", "customer_id_nb_tx_1hour_window")
CHANNELS = ("ecom", "pos", "")
ROWS = 12

literals = st.one_of(
    st.sampled_from(["0", "1", "2.5", "1e3", "0.5", "1_000", "1e308"]),
    st.integers(-5, 5).map(str),
)
text_literals = st.sampled_from(["'ecom'", "'pos'", "''", '"FR"'])


def numbers(depth: int = 3) -> st.SearchStrategy[str]:
    leaf = st.one_of(
        st.sampled_from(NUMBERS),
        literals,
        st.sampled_from(["hour(tx_datetime)", "weekday(tx_datetime)", "0"]),
    )
    if depth == 0:
        return leaf
    inner = numbers(depth - 1)
    arithmetic = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "/"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    return st.one_of(
        leaf,
        arithmetic,
        arithmetic,
        st.tuples(st.sampled_from(["-", "abs"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.lists(inner, min_size=2, max_size=3).flatmap(
            lambda args: st.sampled_from(["min", "max"]).map(lambda f: f"{f}({', '.join(args)})")
        ),
    )


def texts() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(TEXTS), text_literals)


def conditions(depth: int = 2) -> st.SearchStrategy[str]:
    number = numbers(2)
    leaf = st.one_of(
        st.tuples(number, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), number).map(
            " ".join
        ),
        st.tuples(texts(), st.sampled_from(["==", "!="]), texts()).map(" ".join),
        st.tuples(
            st.sampled_from(TEXTS),
            st.sampled_from(["in", "not in"]),
            st.lists(text_literals, min_size=1, max_size=3),
        ).map(lambda t: f"{t[0]} {t[1]} [{', '.join(t[2])}]"),
        st.tuples(
            number, st.sampled_from(["in", "not in"]), st.lists(literals, min_size=1, max_size=3)
        ).map(lambda t: f"{t[0]} {t[1]} [{', '.join(t[2])}]"),
        st.tuples(st.sampled_from(REASON_FEATURES), st.sampled_from(["in", "not in"])).map(
            lambda t: f"'{t[0]}' {t[1]} reasons"
        ),
        st.sampled_from(["true", "false"]),
    )
    if depth == 0:
        return leaf
    inner = conditions(depth - 1)
    return st.one_of(
        leaf,
        inner.map(lambda c: f"not ({c})"),
        st.lists(inner, min_size=2, max_size=3).flatmap(
            lambda parts: st.sampled_from([" and ", " or "]).map(
                lambda op: op.join(f"({p})" for p in parts)
            )
        ),
        st.tuples(inner, st.sampled_from(["==", "!="]), inner).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        ),
    )


edges = st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, 1000.0, math.nan, math.inf, -math.inf])
floats = st.one_of(edges, edges, st.floats(allow_nan=True, allow_infinity=True))
moments = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 1, 1))


@st.composite
def batches(draw: st.DrawFn) -> PolicyBatch:
    columns: dict[str, object] = {
        name: draw(st.lists(floats, min_size=ROWS, max_size=ROWS))
        for name in ("tx_amount", "tx_time_seconds", "customer_id_nb_tx_1day_window")
    }
    seconds = columns["tx_time_seconds"]
    columns["tx_time_seconds"] = [None if i % 3 == 0 else v for i, v in enumerate(seconds)]
    columns["tx_datetime"] = draw(st.lists(moments, min_size=ROWS, max_size=ROWS))
    channel = st.one_of(st.none(), st.sampled_from(CHANNELS))
    columns["channel"] = draw(st.lists(channel, min_size=ROWS, max_size=ROWS))
    columns["country"] = draw(
        st.lists(st.sampled_from([None, "FR", "DE"]), min_size=ROWS, max_size=ROWS)
    )
    reasons = draw(
        st.lists(st.sets(st.sampled_from(REASON_FEATURES)), min_size=ROWS, max_size=ROWS)
    )
    risk = np.array(draw(st.lists(floats, min_size=ROWS, max_size=ROWS)))
    return PolicyBatch(risk, columns, [sorted(r) for r in reasons])


def both(text: str, batch: PolicyBatch) -> tuple[list[bool], list[bool]]:
    tree = parse(text)
    assert check_condition(tree, ENV) == []
    vector = compile_vector(tree, ENV)(BatchColumns(batch, ENV)).tolist()
    scalar_fn = compile_scalar(tree, ENV)
    rows = RowBuilder([ENV.symbols[name] for name in names_in(tree)])
    scalar = []
    for i in range(len(batch)):
        transaction = {name: values[i] for name, values in batch.columns.items()}  # type: ignore[index]
        row = rows(batch.risk[i], transaction, {}, batch.reasons[i])  # type: ignore[index]
        result = scalar_fn(row)
        assert isinstance(result, bool)
        scalar.append(result)
    return scalar, vector


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions(), batches())
def test_scalar_and_vectorised_agree(text, batch):
    scalar, vector = both(text, batch)
    assert scalar == vector, text


#: Conditions that together tell a number's class: sign, zero, NaN, infinities.
PROBES = ("({e}) > 0", "({e}) < 0", "({e}) == 0", "({e}) != ({e})", "abs({e}) > 1e308")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(numbers(3), batches())
def test_number_expressions_agree_on_sign_nan_and_infinity(expression, batch):
    for probe in PROBES:
        text = probe.format(e=expression)
        scalar, vector = both(text, batch)
        assert scalar == vector, text


@settings(max_examples=150, deadline=None)
@given(numbers(3))
def test_random_number_expressions_type_check(text):
    kind, errors = type_of(parse(text), ENV)
    assert errors == [] and str(kind) == "number"


def batch_of(**columns):
    n = len(next(iter(columns.values())))
    risk = columns.pop("risk", [0.0] * n)
    return PolicyBatch(np.asarray(risk, dtype=float), columns, [[] for _ in range(n)])


@pytest.mark.parametrize(
    ("text", "columns", "expected"),
    [
        ("amount / 0 > 0 or amount / 0 <= 0", {"tx_amount": [1.0, 0.0]}, [False, False]),
        ("amount / 0 != 1", {"tx_amount": [1.0]}, [True]),  # NaN != anything
        (
            "tx_time_seconds > 0 or tx_time_seconds <= 0",
            {"tx_time_seconds": [None, 5]},
            [False, True],
        ),
        ("channel == ''", {"channel": [None, "ecom"]}, [True, False]),
        ("channel not in ['ecom']", {"channel": [None, "ecom"]}, [True, False]),
        ("min(amount, 1) < 5", {"tx_amount": [math.nan, 3.0]}, [False, True]),
        ("max(1, amount) > 0", {"tx_amount": [math.nan, 3.0]}, [False, True]),
        (
            "hour(tx_datetime) == 23 and weekday(tx_datetime) == 6",
            {"tx_datetime": [dt.datetime(2018, 4, 1, 23, 59), dt.datetime(2018, 4, 2, 23)]},
            [True, False],  # 2018-04-01 was a Sunday
        ),
        (
            "hour(tx_datetime) == 1",
            {
                "tx_datetime": [
                    dt.datetime(2018, 4, 1, 3, tzinfo=dt.timezone(dt.timedelta(hours=2)))
                ]
            },
            [True],  # aware datetimes are read in UTC
        ),
        ("risk >= 0.5", {"risk": [0.5, 0.49, math.nan]}, [True, False, False]),
        ("1 < 2", {"tx_amount": [1.0, 2.0]}, [True, True]),
    ],
)
def test_semantics_of_missing_values_and_edges(text, columns, expected):
    scalar, vector = both(text, batch_of(**columns))
    assert scalar == vector == expected


def test_reason_masks_and_json_reason_codes_read_the_same():
    scorer_json = '[{"feature":"tx_amount","value":1.0,"contribution":0.2}]'
    batch = PolicyBatch(np.zeros(2), {}, [scorer_json, "[]"])
    masks = PolicyBatch(np.zeros(2), {}, {"tx_amount": np.array([True, False])})
    tree = parse("'tx_amount' in reasons and not 'terminal_id_risk_1day_window' in reasons")
    condition = compile_vector(tree, ENV)
    assert condition(BatchColumns(batch, ENV)).tolist() == [True, False]
    assert condition(BatchColumns(masks, ENV)).tolist() == [True, False]
