"""The unit tests' policy desk (``tests/unit/policy/desk.py``), for the live stream."""

from __future__ import annotations

from tests.unit.policy.desk import desk  # noqa: F401  (fixture)
