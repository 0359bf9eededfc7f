"""fraudrisk.training."""
