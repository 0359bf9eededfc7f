"""The names a rule may read, with their types: transaction fields, features, risk, reasons.

The environment is derived, never listed by hand: transaction fields and their types come from
:class:`fraudrisk.schemas.Transaction`, features from :data:`fraudrisk.features.definitions.
ALL_FEATURES` (or the features of one model). A missing optional field reads as ``""`` (text)
or NaN (number): no comparison with NaN holds, so a rule on a missing number never fires.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, Union, get_args, get_origin

from fraudrisk.features.definitions import ALL_FEATURES, Feature
from fraudrisk.schemas import Transaction


class Type(enum.Enum):
    """The type of a name or an expression."""

    NUMBER = "number"
    BOOL = "bool"
    STRING = "string"
    DATETIME = "datetime"
    STRING_LIST = "list of string"

    def __str__(self) -> str:
        return self.value


#: Where an engine finds a name's value: a transaction or feature column, or the score.
Source = Literal["transaction", "feature", "risk", "reasons"]
#: The calibrated probability of fraud of the transaction.
RISK = "risk"
#: The model's reason codes of the transaction: the features that pushed its risk up.
REASONS = "reasons"
#: Short name of ``tx_amount``.
AMOUNT = "amount"


@dataclass(frozen=True)
class Symbol:
    """A name a rule may use: its type, the column holding its value, where that comes from."""

    name: str
    type: Type
    column: str
    source: Source
    description: str


_PYTHON_TYPES: dict[type, Type] = {
    bool: Type.BOOL,
    int: Type.NUMBER,
    float: Type.NUMBER,
    str: Type.STRING,
    datetime: Type.DATETIME,
}


def _field_type(annotation: object) -> Type:
    """The policy type of a transaction field's annotation (``X | None`` reads as ``X``)."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    if not isinstance(annotation, type) or annotation not in _PYTHON_TYPES:
        raise TypeError(f"no policy type for the annotation {annotation!r}")
    return _PYTHON_TYPES[annotation]


def transaction_symbols() -> dict[str, Symbol]:
    """One symbol per field of :class:`~fraudrisk.schemas.Transaction`."""
    return {
        name: Symbol(
            name, _field_type(field.annotation), name, "transaction", field.description or ""
        )
        for name, field in Transaction.model_fields.items()
    }


def feature_symbols(features: Iterable[Feature]) -> dict[str, Symbol]:
    """One number symbol per feature."""
    return {f.name: Symbol(f.name, Type.NUMBER, f.name, "feature", f.description) for f in features}


@dataclass(frozen=True)
class Environment:
    """What a policy is checked against: its names, the reason-code features, the queues.

    Attributes:
        symbols: Every name a rule may read.
        reason_features: Features that may appear in ``'feature' in reasons``.
        queues: Queue names a ``route`` rule may use; None = any name is accepted.
    """

    symbols: Mapping[str, Symbol]
    reason_features: frozenset[str]
    queues: frozenset[str] | None = None

    @classmethod
    def standard(
        cls, features: Sequence[Feature] = ALL_FEATURES, queues: Iterable[str] | None = None
    ) -> Environment:
        """Transaction fields, the given features (default: all), ``risk``, ``reasons``."""
        symbols = {
            RISK: Symbol(RISK, Type.NUMBER, RISK, "risk", "Calibrated probability of fraud."),
            REASONS: Symbol(
                REASONS, Type.STRING_LIST, REASONS, "reasons", "The model's reason-code features."
            ),
            AMOUNT: Symbol(AMOUNT, Type.NUMBER, "tx_amount", "transaction", "Same as tx_amount."),
        }
        symbols |= transaction_symbols()
        symbols |= {k: v for k, v in feature_symbols(features).items() if k not in symbols}
        names = frozenset(f.name for f in features)
        return cls(symbols, names, None if queues is None else frozenset(queues))

    def with_queues(self, queues: Iterable[str] | None) -> Environment:
        """The same names, with the queue names a ``route`` may use (None = any)."""
        return replace(self, queues=None if queues is None else frozenset(queues))


@dataclass(frozen=True)
class Signature:
    """A function rules may call: parameter types, result type, what it computes.

    Attributes:
        name: How rules call it.
        params: Types of the parameters.
        variadic: More arguments of the last parameter's type are accepted.
        result: Type of the value.
        description: One line for the reference and the CLI.
    """

    name: str
    params: tuple[Type, ...]
    variadic: bool
    result: Type
    description: str

    @property
    def arity(self) -> str:
        """How many arguments, in words (``1``, ``2 or more``)."""
        n = len(self.params)
        return f"{n} or more" if self.variadic else str(n)


#: The functions rules may call (nothing else is callable).
FUNCTIONS: Mapping[str, Signature] = {
    s.name: s
    for s in (
        Signature("abs", (Type.NUMBER,), False, Type.NUMBER, "Absolute value."),
        Signature(
            "min", (Type.NUMBER, Type.NUMBER), True, Type.NUMBER, "Smallest (NaN if any is NaN)."
        ),
        Signature(
            "max", (Type.NUMBER, Type.NUMBER), True, Type.NUMBER, "Largest (NaN if any is NaN)."
        ),
        Signature("hour", (Type.DATETIME,), False, Type.NUMBER, "Hour of the day, 0-23 (UTC)."),
        Signature(
            "weekday", (Type.DATETIME,), False, Type.NUMBER, "Day of the week, 0 = Monday (UTC)."
        ),
    )
}
