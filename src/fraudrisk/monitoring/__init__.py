"""fraudrisk.monitoring."""
