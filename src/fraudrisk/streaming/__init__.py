"""fraudrisk.streaming."""
