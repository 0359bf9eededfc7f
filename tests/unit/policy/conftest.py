"""Fixtures of the policy tests: the policy desk (``tests/unit/policy/desk.py``)."""

from __future__ import annotations

from tests.unit.policy.desk import desk  # noqa: F401  (fixture)
