"""fraudrisk.inference."""
