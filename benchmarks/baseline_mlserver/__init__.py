"""The stock serving baseline of benchmarks/serving_latency.py: MLServer behind a feature hop."""
