"""fraudrisk.alerts."""
