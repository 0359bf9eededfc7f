"""Transactions in: the simulator, the world-change simulator, ingestion and validation.

- ``handbook`` / ``fast`` / ``profiles`` / ``scenarios`` / ``simulate`` — the handbook's
  generator (exact preset and the fast vectorised one) and its fraud scenarios.
- ``world_changes`` — a changing world appended to a lake (new patterns, shifts).
- ``ingest`` / ``readers`` / ``parsing`` / ``validation`` / ``columns`` — files to the lake,
  bad rows quarantined with their reason.
- ``summary`` — a lake checked and summarised for people (table and plot).

May import: io and the base modules.
"""
