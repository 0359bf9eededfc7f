"""fraudrisk.io."""
