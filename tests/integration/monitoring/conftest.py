"""The unit tests' monitored registry (``tests/unit/monitoring/monitored.py``), for the CLI's UI."""

from __future__ import annotations

from tests.unit.monitoring.monitored import monitored  # noqa: F401  (fixture)
from tests.unit.monitoring.test_drift import quiet  # noqa: F401  (fixture)
