"""fraudrisk.api."""
