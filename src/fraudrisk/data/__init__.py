"""fraudrisk.data."""
