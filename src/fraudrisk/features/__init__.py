"""Features: definitions (one source of truth), kernel, online state, Spark jobs, Feast.

- ``definitions`` — the feature names, windows and horizons.
- ``kernel`` / ``online`` / ``state`` — the vectorised window kernel, entity state and updates.
- ``spark`` / ``batch`` / ``chunks`` / ``stream`` — Spark batch and Structured Streaming jobs.
- ``table`` / ``table_rows`` / ``quality`` — the day-partitioned feature table and its checks.
- ``feast_repo`` / ``feast_store`` — the Feast repository and online store.
- ``handbook_pandas`` — a plain-pandas reference implementation the kernel is tested against.

May import: data, io and the base modules.
"""
