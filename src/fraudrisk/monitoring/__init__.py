"""fraudrisk.monitoring: drift and delayed-label performance reports, and retraining triggers.

- :mod:`~fraudrisk.monitoring.results` — the result types every part exchanges.
- references live in :mod:`fraudrisk.registry.references` (written at registration).
- ``drift`` — Evidently drift / data-quality reports of a window against that reference.
- ``performance`` — delayed-label performance per day and variant.
- ``trigger`` / ``watch`` — retraining on drift or performance drop, once per cause per cool-down:
  ``ledger`` (the decisions and fire-once claims in the database), ``checks`` (one round's drift
  and performance checks), ``pipeline_steps`` (the KFP monitoring pipeline's steps).

May import: training, scoring, registry, alerts and below. Never jobs, api or release.
"""
