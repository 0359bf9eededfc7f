"""The score and alert store: every decision, and an alert for each one analysts must see.

- ``store`` — :class:`~fraudrisk.alerts.store.AlertStore` on SQLite or PostgreSQL.
- ``records`` — what it writes: a score record, or a batch of score columns.
- ``bulk`` — bulk upserts, one form per SQL dialect.

Written by jobs and the API, read by monitoring (and cases): so it sits below them all, and may
import only io and the base modules.
"""
