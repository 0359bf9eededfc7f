"""fraudrisk.features."""
