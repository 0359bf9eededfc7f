"""The decision policy: its versions and four-eyes approval (the language and backtests follow).

- ``tables`` — ``policy_versions`` (made by the migrations of :mod:`fraudrisk.io.database`).
- ``versions`` — draft → pending → approved → active → retired; rollback; the audit log.

May import identity, io, config and the base modules.
"""
