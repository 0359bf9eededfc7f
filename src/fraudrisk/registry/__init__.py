"""The MLflow model registry: versions, aliases, references, shared by training/serving/monitoring.

- ``mlflow_io`` — MLflow clients on the configured URIs, the served ``fraud_probability`` model.
- ``versions`` — register a version with its thresholds and gate verdict; aliases; promote.
- ``references`` — each version's monitoring reference (feature rows and scores).

May import: features (the feature set a version was trained on) and below.
"""
