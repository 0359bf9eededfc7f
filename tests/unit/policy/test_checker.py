"""The type checker and the environment: names from the schema and features, errors at offsets."""

from __future__ import annotations

import pytest

from fraudrisk.features.definitions import ALL_FEATURES, FEATURE_NAMES
from fraudrisk.policy.checker import check_condition, type_of
from fraudrisk.policy.expressions import parse
from fraudrisk.policy.types import FUNCTIONS, Environment, Type
from fraudrisk.schemas import Transaction

ENV = Environment.standard()


def kind(text: str) -> Type | None:
    found, errors = type_of(parse(text), ENV)
    assert errors == [], [e.message for e in errors]
    return found


def test_environment_comes_from_the_schema_and_the_features():
    symbols = ENV.symbols
    assert set(Transaction.model_fields) | set(FEATURE_NAMES) | {
        "risk",
        "reasons",
        "amount",
    } == set(symbols)
    assert symbols["tx_datetime"].type is Type.DATETIME
    assert symbols["channel"].type is Type.STRING and symbols["channel"].source == "transaction"
    assert symbols["tx_time_days"].type is Type.NUMBER  # int | None
    assert all(symbols[name].type is Type.NUMBER for name in FEATURE_NAMES)
    assert symbols["amount"].column == "tx_amount"
    assert symbols["reasons"].type is Type.STRING_LIST
    assert ENV.reason_features == frozenset(FEATURE_NAMES)


def test_an_environment_of_one_models_features():
    env = Environment.standard(features=ALL_FEATURES[:3])
    tree = parse("terminal_id_risk_7day_window > 0.5")
    (error,) = check_condition(tree, env)
    assert "unknown field 'terminal_id_risk_7day_window'" in error.message
    (error,) = check_condition(parse("'customer_id_nb_tx_1day_window' in reasons"), env)
    assert "is not a feature of the model" in error.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amount + 1", Type.NUMBER),
        ("-risk * 2 / amount", Type.NUMBER),
        ("hour(tx_datetime)", Type.NUMBER),
        ("max(amount, 1, risk)", Type.NUMBER),
        ("channel", Type.STRING),
        ("tx_datetime", Type.DATETIME),
        ("reasons", Type.STRING_LIST),
        ("amount > 1", Type.BOOL),
        ("channel == 'ecom'", Type.BOOL),
        ("channel == country", Type.BOOL),
        ("(amount > 1) == (risk > 0.5)", Type.BOOL),
        ("country not in ['FR', 'DE']", Type.BOOL),
        ("customer_id in [1, 2]", Type.BOOL),
        ("'tx_amount' in reasons", Type.BOOL),
        ("not true", Type.BOOL),
        ("amount > 1 and risk > 0.1 or false", Type.BOOL),
    ],
)
def test_types_of_expressions(text, expected):
    assert kind(text) is expected


@pytest.mark.parametrize(
    ("text", "offset", "message"),
    [
        ("tx_amout > 100", 0, "unknown field 'tx_amout' (did you mean 'tx_amount'?)"),
        ("amount > 1 and True", 15, "unknown field 'True': write 'true'"),
        ("channel == None", 11, "unknown field 'None'"),
        ("hour > 3", 0, "'hour' is a function: call it"),
        ("channel == 5", 0, "cannot compare a string with a number"),
        ("channel > 'a'", 0, "'>' compares numbers; text compares with '=='"),
        ("amount < channel", 9, "'<' compares numbers"),
        ("tx_datetime > 3", 0, "'>' does not compare datetimes"),
        ("tx_datetime == tx_datetime", 0, "a datetime cannot be compared with '=='"),
        ("amount and risk > 1", 0, "'and' needs conditions on both sides, got a number"),
        ("risk > 1 or channel", 12, "'or' needs conditions on both sides, got a string"),
        ("not amount", 4, "'not' needs a condition, got a number"),
        ("-channel == 'a'", 1, "'-' needs a number, got a string"),
        ("channel + 1 > 2", 0, "'+' needs numbers on both sides, got a string"),
        ("amount * tx_datetime > 2", 9, "got a datetime (use hour(...) or weekday(...))"),
        ("hour(tx_datetime, 1) > 2", 0, "hour() takes 1 argument, got 2"),
        ("abs() > 2", 0, "abs() takes 1 argument, got 0"),
        ("min(amount) > 2", 0, "min() takes 2 or more arguments, got 1"),
        ("hour(amount) > 2", 5, "argument 1 of hour() must be a datetime, got a number"),
        ("max(amount, channel) > 2", 12, "argument 2 of max() must be a number, got a string"),
        ("channel in ['ecom', 5]", 20, "this item is a number, the value looked up is a string"),
        ("tx_datetime in [1]", 0, "'in' looks up a number or a text, got a datetime"),
        ("'tx_amout' in reasons", 0, "'tx_amout' is not a feature of the model (did you mean"),
        ("channel in reasons", 0, "must be a feature name in quotes"),
        ("'a' in channel", 7, "'in' needs a list [...] or 'reasons' on its right"),
        ("reasons == 'a'", 0, "cannot compare a list of text (reasons) with a string"),
        ("amount", 0, "a condition must be true or false, this is a number"),
        ("channel", 0, "a condition must be true or false, this is a string"),
    ],
)
def test_type_errors_name_their_offset(text, offset, message):
    errors = check_condition(parse(text), ENV)
    assert len(errors) == 1, [e.message for e in errors]
    assert message in errors[0].message
    assert errors[0].start == offset


def test_every_problem_of_an_expression_is_reported_once():
    text = "tx_amout > 1 and channel == 5 and hour(risk) > 2 and bogus"
    errors = check_condition(parse(text), ENV)
    assert [e.start for e in errors] == [0, 17, 39, 53]
    assert "unknown field 'bogus'" in errors[-1].message


def test_an_unknown_name_does_not_cascade():
    (error,) = check_condition(parse("not (zzz + 1 > 2)"), ENV)
    assert error.message == "unknown field 'zzz'"


def test_function_table_is_complete():
    from fraudrisk.policy.scalar import SCALAR_FUNCTIONS
    from fraudrisk.policy.vector import VECTOR_FUNCTIONS

    assert set(FUNCTIONS) == set(SCALAR_FUNCTIONS) == set(VECTOR_FUNCTIONS)
