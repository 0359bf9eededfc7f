"""The Feast store of the platform: configuration, apply, materialize, online look-ups, push.

The store is configured in code from :class:`~fraudrisk.config.Settings` (project
``fraudrisk``, local provider, file registry, file offline store, SQLite or Redis online store)
and the same configuration is written to ``<repo>/feature_store.yaml`` so the ``feast`` CLI
works in the repo directory too. A Redis password is never written there: the YAML refers to
``$FRAUDRISK_FEAST__REDIS_CONNECTION_STRING`` instead (Feast expands variables in it).
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from fraudrisk.features.definitions import ALL_FEATURES
from fraudrisk.features.feast_repo import PUSH_SOURCES, build_repo_objects
from fraudrisk.features.state import CUSTOMER_STATE_COLUMNS, TERMINAL_STATE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    from fraudrisk.config import Settings

PROJECT = "fraudrisk"
#: Serialization of entity keys in the online store: 3 is the only non-deprecated one in 0.67.
ENTITY_KEY_SERIALIZATION_VERSION = 3
REDIS_ENV = "FRAUDRISK_FEAST__REDIS_CONNECTION_STRING"
Entity = Literal["customer", "terminal"]
#: Feature references read online per entity (view:feature), in the views' declared order.
ONLINE_REFS: dict[Entity, list[str]] = {
    "customer": [
        f"customer_features:{f.name}"
        for f in ALL_FEATURES
        if f.name == "tx_amount" or f.group == "customer"
    ]
    + [f"customer_state:{c}" for c in CUSTOMER_STATE_COLUMNS],
    "terminal": [f"terminal_features:{f.name}" for f in ALL_FEATURES if f.group == "terminal"]
    + [f"terminal_state:{c}" for c in TERMINAL_STATE_COLUMNS],
}


def _config_dict(repo: Path, settings: Settings, *, for_yaml: bool) -> dict[str, Any]:
    online: dict[str, Any] = {"type": "sqlite", "path": str(repo / "online.db")}
    if settings.feast.online_store == "redis":
        secret = settings.feast.redis_connection_string.get_secret_value()
        hidden = for_yaml and "password" in secret.lower()
        online = {"type": "redis", "connection_string": f"${{{REDIS_ENV}}}" if hidden else secret}
    return {
        "project": PROJECT,
        "provider": "local",
        "registry": str(repo / "registry.db"),
        # "file" is Feast's plain Parquet offline store (implemented with Dask in 0.67).
        "offline_store": {"type": "file"},
        "online_store": online,
        "entity_key_serialization_version": ENTITY_KEY_SERIALIZATION_VERSION,
    }


def write_feature_store_yaml(repo_path: Path | str, settings: Settings) -> Path:
    """Write ``feature_store.yaml`` into the repo directory (atomically, only when it changed).

    Args:
        repo_path: The feature repository directory (created if missing).
        settings: The platform settings (online store choice and Redis endpoint).

    Returns:
        The path of the YAML file.
    """
    import yaml  # deferred: pyyaml comes with feast; scoring imports this module

    repo = Path(repo_path).resolve()
    repo.mkdir(parents=True, exist_ok=True)
    target = repo / "feature_store.yaml"
    text = yaml.safe_dump(_config_dict(repo, settings, for_yaml=True), sort_keys=False)
    if target.exists() and target.read_text() == text:
        return target
    fd, tmp = tempfile.mkstemp(dir=repo, prefix=".feature_store.", suffix=".yaml")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, target)
    return target


def repo_config(settings: Settings) -> RepoConfig:
    """The Feast configuration of the platform, built in code (secrets included)."""
    from feast.repo_config import RepoConfig  # deferred: feast (≈3 s) only when a store is opened

    repo = settings.feast_repo_path.resolve()
    return RepoConfig(repo_path=repo, **_config_dict(repo, settings, for_yaml=False))


def get_store(settings: Settings) -> FeatureStore:
    """A Feast ``FeatureStore`` over the platform's repo (its YAML written alongside)."""
    from feast import FeatureStore  # deferred: feast (≈3 s) only when a store is opened

    write_feature_store_yaml(settings.feast_repo_path, settings)
    return FeatureStore(config=repo_config(settings))


def apply(settings: Settings, table_uri: str) -> list[str]:
    """Register the repository over a feature table; create the online tables.

    Args:
        settings: The platform settings.
        table_uri: The feature table directory written by the batch job.

    Returns:
        The names of the applied objects, in declaration order.
    """
    if "://" not in table_uri:
        table_uri = str(Path(table_uri).resolve())
    objects = build_repo_objects(table_uri)
    get_store(settings).apply(objects)  # type: ignore[arg-type]
    return [str(getattr(obj, "name", "")) for obj in objects]


def materialize(settings: Settings, start: datetime | None, end: datetime | None) -> None:
    """Load the latest feature values and the batch entity state into the online store.

    Args:
        settings: The platform settings.
        start: First event time to load; ``None`` = incremental (from the last run, or
            now - ttl on the first one).
        end: Last event time to load; ``None`` = now.
    """
    store = get_store(settings)
    end = end or datetime.now(UTC)
    if start is None:
        store.materialize_incremental(end_date=end)
    else:
        store.materialize(start_date=start, end_date=end)


def online_features(
    settings: Settings, customer_ids: list[int] | None, terminal_ids: list[int] | None
) -> dict[str, list[dict[str, Any]]]:
    """Online values (latest features and entity state) of some customers and terminals.

    Returns:
        ``{"customer": [row, ...], "terminal": [row, ...]}``, one dict per requested id (its
        join key first, ``None`` for values the online store lacks); an entity without ids is
        left out.
    """
    store = get_store(settings)
    wanted: dict[Entity, list[int] | None] = {"customer": customer_ids, "terminal": terminal_ids}
    return {entity: lookup(store, entity, ids) for entity, ids in wanted.items() if ids}


def lookup(store: FeatureStore, entity: Entity, ids: list[int]) -> list[dict[str, Any]]:
    """Online rows of one entity kind from an open store (reuse the store on hot paths)."""
    key = f"{entity}_id"
    response = store.get_online_features(
        features=ONLINE_REFS[entity], entity_rows=[{key: int(i)} for i in ids]
    ).to_dict()
    names = [key] + [ref.split(":", 1)[1] for ref in ONLINE_REFS[entity]]
    return [{name: response[name][row] for name in names} for row in range(len(ids))]


def push_entity_state(store: FeatureStore, entity: Entity, state: pd.DataFrame | pa.Table) -> None:
    """Write fresh entity state to the online store through its push source.

    Args:
        store: An open store (:func:`get_store`), kept by the caller across pushes.
        entity: ``customer`` or ``terminal``.
        state: Rows in the layout of ``_entity_state/<entity>``: the join key,
            ``state_as_of`` and the event arrays.
    """
    from feast.data_source import PushMode  # deferred: feast (≈3 s) only when pushing

    frame = state.to_pandas() if isinstance(state, pa.Table) else state
    store.push(PUSH_SOURCES[entity], frame, to=PushMode.ONLINE)
