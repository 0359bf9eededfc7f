"""The one error type of the monitoring commands: bad input or missing data, said plainly."""

from __future__ import annotations


class MonitoringError(ValueError):
    """A drift report or reference cannot be made; the message says why and what to do."""
