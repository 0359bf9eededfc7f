"""The Feast feature repository, declared in Feast's order: entities → sources → views → services.

One feature table (written by the batch job, one row per transaction, ``dt=`` partitions) feeds
three views: ``transaction_features`` (every model input, keyed by transaction — the offline,
point-in-time training contract), and ``customer_features`` / ``terminal_features`` (the
latest value per entity once materialized). The entity state written next to the table feeds
``customer_state`` / ``terminal_state`` through push sources, so the stream job can push fresh
state online while ``materialize`` loads the batch state.

Services are versioned: ``fraud_scoring_v1`` is what a model records (name + feature set
version); ``online_state_v1`` is what an online scorer reads to recompute every feature.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from fraudrisk.features.definitions import ALL_FEATURES, FEATURE_SET_VERSION, Feature
from fraudrisk.features.state import CUSTOMER_STATE_COLUMNS, TERMINAL_STATE_COLUMNS, state_path

if TYPE_CHECKING:
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource

#: Offline look-back of every view: long enough to train on years of history, and the window
#: ``materialize_incremental`` loads on its first run (it starts at now - ttl).
HISTORY_TTL = timedelta(days=3650)
TIMESTAMP = "tx_datetime"
PARTITION_GLOB = "dt=*/*.parquet"
STATE_TIMESTAMP = "state_as_of"
PUSH_SOURCES = {"customer": "customer_state_push", "terminal": "terminal_state_push"}
SCORING_SERVICE = f"fraud_scoring_{FEATURE_SET_VERSION}"
STATE_SERVICE = f"online_state_{FEATURE_SET_VERSION}"
_TAGS = {"feature_set_version": FEATURE_SET_VERSION, "owner_package": "fraudrisk"}
_STATE_DESCRIPTIONS = {
    "event_seconds": "Unix seconds (UTC) of the entity's events in its horizon, oldest first.",
    "event_ids": "Transaction ids of those events.",
    "event_amounts": "Amounts of those events.",
    "event_terminals": "Terminal ids of those events.",
    "event_labels": "Fraud labels of those events (-1 until the label delay has passed).",
}


def build_repo_objects(table_uri: str) -> list[object]:
    """Every Feast object of the repository over a feature table, in Feast's order.

    Args:
        table_uri: The feature table directory (``dt=`` partitions, ``_entity_state/`` beside).

    Returns:
        Entities, then data sources, then feature views, then feature services.
    """
    customer, terminal, transaction = _entities()
    table, customer_state_file, terminal_state_file = _file_sources(table_uri)
    customer_push, terminal_push = _push_sources(customer_state_file, terminal_state_file)
    views = _views(customer, terminal, transaction, table, customer_push, terminal_push)
    return [
        customer,
        terminal,
        transaction,
        table,
        customer_state_file,
        terminal_state_file,
        customer_push,
        terminal_push,
        *views,
        *_services(views[0], views[3], views[4]),
    ]


def _entities() -> tuple[Entity, Entity, Entity]:
    # deferred: feast (≈3 s); registry.versions imports this module
    from feast import Entity, ValueType

    def entity(name: str, what: str) -> Entity:
        return Entity(
            name=name,
            join_keys=[f"{name}_id"],
            value_type=ValueType.INT64,
            description=what,
            tags=_TAGS,
        )

    return (
        entity("customer", "A card holder."),
        entity("terminal", "A point of sale."),
        entity("transaction", "One card transaction (one row of the feature table)."),
    )


def _file_sources(table_uri: str) -> tuple[FileSource, FileSource, FileSource]:
    from feast import FileSource  # deferred: feast (≈3 s), as in _entities
    from feast.data_format import ParquetFormat

    def source(name: str, path: str, timestamp: str, what: str) -> FileSource:
        return FileSource(
            name=name,
            path=path,
            timestamp_field=timestamp,
            file_format=ParquetFormat(),
            description=what,
            tags=_TAGS,
        )

    root = table_uri.rstrip("/")
    return (
        # A glob, not the directory: Dask would also read the _entity_state/ files under it.
        source(
            "feature_table",
            f"{root}/{PARTITION_GLOB}",
            TIMESTAMP,
            "Batch feature table: one row per transaction, dt= day partitions.",
        ),
        source(
            "customer_state_batch",
            state_path(root, "customer"),
            STATE_TIMESTAMP,
            "Customer entity state written by the batch job.",
        ),
        source(
            "terminal_state_batch",
            state_path(root, "terminal"),
            STATE_TIMESTAMP,
            "Terminal entity state written by the batch job.",
        ),
    )


def _push_sources(customer: FileSource, terminal: FileSource) -> tuple[PushSource, PushSource]:
    from feast import PushSource  # deferred: feast (≈3 s), as in _entities

    return (
        PushSource(
            name=PUSH_SOURCES["customer"],
            batch_source=customer,
            description="Customer state pushed by the stream job.",
            tags=_TAGS,
        ),
        PushSource(
            name=PUSH_SOURCES["terminal"],
            batch_source=terminal,
            description="Terminal state pushed by the stream job.",
            tags=_TAGS,
        ),
    )


def _views(
    customer: Entity,
    terminal: Entity,
    transaction: Entity,
    table: FileSource,
    customer_push: PushSource,
    terminal_push: PushSource,
) -> list[FeatureView]:
    from feast import FeatureView  # deferred: feast (≈3 s), as in _entities

    def view(
        name: str,
        entity: Entity,
        source: object,
        schema: list[Field],
        what: str,
        online: bool = True,
    ) -> FeatureView:
        return FeatureView(
            name=name,
            entities=[entity],
            source=source,  # type: ignore[arg-type]
            schema=schema,
            ttl=HISTORY_TTL,
            online=online,
            description=what,
            tags=_TAGS,
        )

    by_group = {g: [f for f in ALL_FEATURES if f.group == g] for g in ("customer", "terminal")}
    amount = [f for f in ALL_FEATURES if f.name == "tx_amount"]
    return [
        # Offline only: one online row per transaction would grow the online store forever.
        view(
            "transaction_features",
            transaction,
            table,
            _fields(ALL_FEATURES),
            "Every model input of a transaction, point-in-time by transaction.",
            online=False,
        ),
        view(
            "customer_features",
            customer,
            table,
            _fields(amount + by_group["customer"]),
            "The customer's features (and amount) of its latest transaction.",
        ),
        view(
            "terminal_features",
            terminal,
            table,
            _fields(by_group["terminal"]),
            "The terminal's features of its latest transaction.",
        ),
        view(
            "customer_state",
            customer,
            customer_push,
            _state_fields(CUSTOMER_STATE_COLUMNS),
            "Customer events in the 30-day horizon, to recompute features online.",
        ),
        view(
            "terminal_state",
            terminal,
            terminal_push,
            _state_fields(TERMINAL_STATE_COLUMNS),
            "Terminal events in the 37-day horizon, to recompute features online.",
        ),
    ]


def _fields(features: tuple[Feature, ...] | list[Feature]) -> list[Field]:
    from feast import Field  # deferred: feast (≈3 s), as in _entities
    from feast.types import Float64, Int64

    return [
        Field(name=f.name, dtype=Int64 if f.kind == "int" else Float64, description=f.description)
        for f in features
    ]


def _state_fields(columns: tuple[str, ...]) -> list[Field]:
    from feast import Field  # deferred: feast (≈3 s), as in _entities
    from feast.types import Array, Float64, Int64

    return [
        Field(
            name=c,
            dtype=Array(Float64 if c == "event_amounts" else Int64),
            description=_STATE_DESCRIPTIONS[c],
        )
        for c in columns
    ]


def _services(
    transaction_view: FeatureView, customer_state: FeatureView, terminal_state: FeatureView
) -> list[FeatureService]:
    from feast import FeatureService  # deferred: feast (≈3 s), as in _entities

    return [
        FeatureService(
            name=SCORING_SERVICE,
            features=[transaction_view],
            tags=_TAGS,
            description=f"Model inputs, feature set {FEATURE_SET_VERSION}: the contract a "
            "model records (service name + version).",
        ),
        FeatureService(
            name=STATE_SERVICE,
            features=[customer_state, terminal_state],
            tags=_TAGS,
            description=f"Entity state for online scoring, feature set {FEATURE_SET_VERSION}.",
        ),
    ]
