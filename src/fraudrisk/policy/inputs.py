"""What an engine is given: a scored batch as columns, or one scored transaction.

Values are normalised the same way for both evaluators, so they agree: numbers become float64
(NaN when missing), text ``str`` (``""`` when missing), datetimes naive UTC at microsecond
resolution, reasons a set of feature names. Reason codes may be given as the scorer's JSON
(``[{"feature": ..., "value": ..., "contribution": ...}, ...]``), as collections of feature
names, or (batches) as one boolean mask per feature.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from fraudrisk.policy.errors import PolicyInputError
from fraudrisk.policy.types import Environment, Symbol, Type

ReasonsInput = str | Collection[str]


_NO_REASONS: frozenset[str] = frozenset()
#: The scorer's JSON of a row without reason codes (most rows: no JSON to parse).
_NO_REASONS_JSON = ("[]", "")


def reason_set(reasons: ReasonsInput | None) -> frozenset[str]:
    """The feature names of one row's reason codes (scorer JSON or names)."""
    if reasons is None:
        return _NO_REASONS
    if isinstance(reasons, str):
        if reasons in _NO_REASONS_JSON:
            return _NO_REASONS
        return frozenset(entry["feature"] for entry in json.loads(reasons))
    return frozenset(reasons)


def number(value: Any) -> float:
    """A number as the evaluators see it (None → NaN)."""
    return math.nan if value is None else float(value)


def text(value: Any) -> str:
    """A text as the evaluators see it (None or NaN → ``""``)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def moment(value: Any) -> datetime:
    """A datetime as the evaluators see it: naive UTC (ISO text and numpy datetimes accepted)."""
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[us]").astype(datetime)
    elif isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise PolicyInputError(f"not a datetime: {type(value).__name__}")
    found: datetime = value
    if found.tzinfo is not None:
        found = found.astimezone(UTC).replace(tzinfo=None)
    return found


_SCALAR: dict[Type, Callable[[Any], Any]] = {
    Type.NUMBER: number,
    Type.STRING: text,
    Type.DATETIME: moment,
    Type.BOOL: bool,
}


def normaliser(kind: Type) -> Callable[[Any], Any]:
    """How the scalar evaluator's row holds a value of type ``kind`` (:func:`number`…)."""
    return _SCALAR[kind]


def number_column(values: Any) -> npt.NDArray[np.float64]:
    """A number column as float64 (None → NaN)."""
    return np.asarray(values, dtype=np.float64)


def text_column(values: Any) -> npt.NDArray[np.str_]:
    """A text column as a ``str`` array (None or NaN → ``""``)."""
    array = np.asarray(values)
    if array.dtype.kind == "U":
        return array
    return np.array([text(v) for v in array.tolist()], dtype=np.str_)


def moment_column(values: Any) -> npt.NDArray[np.datetime64]:
    """A datetime column as ``datetime64[us]``, naive UTC."""
    array = np.asarray(values)
    if array.dtype.kind == "M":
        return array.astype("datetime64[us]")
    return np.array([moment(v) for v in array.tolist()], dtype="datetime64[us]")


_VECTOR: dict[Type, Callable[[Any], Any]] = {
    Type.NUMBER: number_column,
    Type.STRING: text_column,
    Type.DATETIME: moment_column,
    Type.BOOL: lambda values: np.asarray(values, dtype=np.bool_),
}


@dataclass(frozen=True)
class PolicyBatch:
    """A scored batch, as columns aligned by row.

    Attributes:
        risk: Calibrated probability of fraud per row.
        columns: Transaction fields and features by name (numpy arrays, lists, Arrow or
            pandas columns). Only the columns the policy reads are needed
            (:attr:`fraudrisk.policy.document.CheckedPolicy.columns`).
        reasons: Per row, the reason codes (scorer JSON or feature names); or, per feature, a
            boolean mask; None when the policy reads no reasons.
    """

    risk: npt.NDArray[np.float64]
    columns: Mapping[str, Any] = field(default_factory=dict)
    reasons: Sequence[ReasonsInput] | Mapping[str, npt.NDArray[np.bool_]] | None = None

    @classmethod
    def from_matrix(
        cls,
        risk: npt.ArrayLike,
        transactions: Mapping[str, Any],
        matrix: npt.NDArray[np.floating[Any]],
        names: Sequence[str],
        reasons: Sequence[ReasonsInput] | None = None,
    ) -> PolicyBatch:
        """A batch from transaction columns and the scorer's feature matrix.

        Args:
            risk: Calibrated risk per row.
            transactions: Transaction columns by field name.
            matrix: Features, one column per name of ``names`` (float32 or float64).
            names: The matrix's feature names.
            reasons: Per row, the reason codes (scorer JSON or feature names).
        """
        features = {name: matrix[:, i] for i, name in enumerate(names)}
        return cls(np.asarray(risk, dtype=np.float64), {**features, **transactions}, reasons)

    def __len__(self) -> int:
        return len(self.risk)


class BatchColumns:
    """A :class:`PolicyBatch` seen through an environment: normalised, cached columns."""

    def __init__(self, batch: PolicyBatch, environment: Environment) -> None:
        self.batch = batch
        self.types = {s.column: s.type for s in environment.symbols.values()}
        self._columns: dict[str, Any] = {}
        self._masks: dict[str, npt.NDArray[np.bool_]] = {}
        self._reason_sets: list[frozenset[str]] | None = None

    def __len__(self) -> int:
        return len(self.batch.risk)

    def column(self, name: str) -> Any:
        """The normalised column ``name`` (``risk`` included)."""
        if name not in self._columns:
            if name == "risk":
                values: Any = self.batch.risk
            elif name in self.batch.columns:
                values = self.batch.columns[name]
            else:
                raise PolicyInputError(f"the policy reads {name!r}, which the batch lacks")
            normalised = _VECTOR[self.types[name]](values)
            if normalised.shape != (len(self),):
                raise PolicyInputError(f"column {name!r} has shape {normalised.shape}")
            self._columns[name] = normalised
        return self._columns[name]

    def reason_mask(self, feature: str) -> npt.NDArray[np.bool_]:
        """True where ``feature`` is among the row's reason codes."""
        reasons = self.batch.reasons
        if reasons is None:
            raise PolicyInputError("the policy reads the reason codes, which the batch lacks")
        if isinstance(reasons, Mapping):
            mask = reasons.get(feature)
            return np.zeros(len(self), np.bool_) if mask is None else np.asarray(mask, np.bool_)
        if feature not in self._masks:
            if self._reason_sets is None:
                self._reason_sets = [reason_set(r) for r in reasons]
            sets = self._reason_sets
            self._masks[feature] = np.fromiter((feature in s for s in sets), np.bool_, len(sets))
        return self._masks[feature]


def _lookup(source: Any) -> Callable[[str], Any]:
    """A getter of fields from a mapping or a pydantic model (a missing field: KeyError)."""
    if isinstance(source, Mapping):
        return source.__getitem__
    if isinstance(source, BaseModel):

        def attribute(name: str) -> Any:
            try:
                return getattr(source, name)
            except AttributeError:
                raise KeyError(name) from None

        return attribute
    raise PolicyInputError(f"a transaction is a mapping or a model, not {type(source).__name__}")


class RowBuilder:
    """Builds the scalar evaluator's row of one transaction, with only the columns needed."""

    def __init__(self, symbols: Collection[Symbol]) -> None:
        self.plan = [
            (s.column, s.source, _SCALAR[s.type])
            for s in {
                s.column: s for s in symbols if s.source in ("transaction", "feature")
            }.values()
        ]
        self.needs_reasons = any(s.source == "reasons" for s in symbols)

    def __call__(
        self,
        risk: float,
        transaction: Mapping[str, Any] | BaseModel,
        features: Mapping[str, Any] | None,
        reasons: ReasonsInput | None,
    ) -> dict[str, Any]:
        """The row: ``risk``, the columns read, ``reasons``."""
        row: dict[str, Any] = {"risk": float(risk)}
        from_transaction, from_features = _lookup(transaction), _lookup(features or {})
        for column, source, normalise in self.plan:
            first, second = (
                (from_transaction, from_features)
                if source == "transaction"
                else (from_features, from_transaction)
            )
            try:
                value = first(column)
            except KeyError:
                try:
                    value = second(column)
                except KeyError:
                    raise PolicyInputError(
                        f"the policy reads {column!r}, which is missing"
                    ) from None
            row[column] = normalise(value)
        if self.needs_reasons:
            if reasons is None:
                raise PolicyInputError("the policy reads the reason codes: pass reasons")
            row["reasons"] = reason_set(reasons)
        return row
