"""fraudrisk: a real-time card-transaction fraud risk platform."""

__version__ = "0.1.0"
