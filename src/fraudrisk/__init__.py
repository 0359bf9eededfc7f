"""fraudrisk: a real-time card-transaction fraud risk platform.

One package, in layers (higher may import lower, never back; checked by import-linter from the
contracts in pyproject.toml, see README "Layout"):

    cli, demo
    api | jobs | release | monitoring
    serving | training
    scoring
    registry
    features
    alerts | data
    io
    config | console
    schemas | vocab | cards | errors
"""

__version__ = "0.1.0"
