"""Reading entity state from the online store for in-process feature computation.

:class:`FeastStateReader` reads the ``customer_state`` and ``terminal_state`` feature views of
the ``online_state`` feature service straight through the online store's ``online_read`` (one
round trip per entity kind and batch; Feast's ``get_online_features`` costs ~1 ms more per call
in response shaping that a scorer does not need). :class:`MemoryStateReader` holds states in
dictionaries, for unit tests and for scoring a lake partition after a replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fraudrisk.features.feast_store import get_store
from fraudrisk.features.online import CustomerState, TerminalState
from fraudrisk.features.state import CUSTOMER_STATE_COLUMNS, TERMINAL_STATE_COLUMNS

if TYPE_CHECKING:
    from feast import FeatureStore

    from fraudrisk.config import Settings


@dataclass
class EntityStates:
    """States of a batch's customers and terminals (absent = no history)."""

    customers: dict[int, CustomerState] = field(default_factory=dict)
    terminals: dict[int, TerminalState] = field(default_factory=dict)


class StateReader(Protocol):
    """Where a scorer gets the entity state of a batch."""

    def read(self, customer_ids: Iterable[int], terminal_ids: Iterable[int]) -> EntityStates:
        """States of the given customers and terminals."""
        ...


@dataclass
class MemoryStateReader:
    """States kept in dictionaries."""

    customers: dict[int, CustomerState] = field(default_factory=dict)
    terminals: dict[int, TerminalState] = field(default_factory=dict)

    def read(self, customer_ids: Iterable[int], terminal_ids: Iterable[int]) -> EntityStates:
        """The stored states of the ids (unknown ids are left out)."""
        return EntityStates(
            {i: self.customers[i] for i in set(customer_ids) if i in self.customers},
            {i: self.terminals[i] for i in set(terminal_ids) if i in self.terminals},
        )


class FeastStateReader:
    """Entity state from the Feast online store (SQLite embedded, Redis/ElastiCache in prod)."""

    def __init__(self, store: FeatureStore) -> None:
        """Bind the reader to an open store; the views are resolved once."""
        self._store = store
        self._provider = store._get_provider()  # the online store's own read path
        self._views = {
            "customer": store.get_feature_view("customer_state"),
            "terminal": store.get_feature_view("terminal_state"),
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> FeastStateReader:
        """A reader on the platform's Feast repo."""
        return cls(get_store(settings))

    def read(self, customer_ids: Iterable[int], terminal_ids: Iterable[int]) -> EntityStates:
        """States of the given customers and terminals, one online read per entity kind."""
        customers = self._read("customer", CUSTOMER_STATE_COLUMNS, customer_ids)
        terminals = self._read("terminal", TERMINAL_STATE_COLUMNS, terminal_ids)
        return EntityStates(
            {key: CustomerState(**values) for key, values in customers.items()},
            {key: TerminalState(**values) for key, values in terminals.items()},
        )

    def _read(
        self, entity: str, columns: tuple[str, ...], ids: Iterable[int]
    ) -> dict[int, dict[str, list[Any]]]:
        # deferred: feast (≈3 s) only when reading the online store
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        keys = sorted({int(i) for i in ids})
        if not keys:
            return {}
        entity_keys = [
            EntityKey(join_keys=[f"{entity}_id"], entity_values=[Value(int64_val=key)])
            for key in keys
        ]
        rows = self._provider.online_read(
            config=self._store.config,
            table=self._views[entity],
            entity_keys=entity_keys,
            requested_features=list(columns),
        )
        found: dict[int, dict[str, list[Any]]] = {}
        for key, (_stamp, values) in zip(keys, rows, strict=True):
            if values:
                found[key] = {name: _as_list(values.get(name)) for name in columns}
        return found


def _as_list(value: Any) -> list[Any]:
    """The Python list inside a Feast ``ValueProto`` list value (empty when unset)."""
    if value is None:
        return []
    kind = value.WhichOneof("val")
    return list(getattr(value, kind).val) if kind else []
