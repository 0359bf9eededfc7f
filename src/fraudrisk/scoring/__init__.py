"""The scoring core every path shares: a loaded model, feature vectors, risk, decisions, reasons.

- ``model`` — a served model loaded once (registry or storage URI), its card and thresholds.
- ``trees`` — XGBoost trees walked in numpy (checked bit-equal to the booster at load).
- ``vectors`` — feature vectors of a batch of transactions from entity state.
- ``state_reader`` — entity state from the Feast online store.
- ``decisions`` — risk to decision under the thresholds, reason codes, fallback rules.
- ``scorer`` — :class:`~fraudrisk.scoring.scorer.Scorer`: the one thing called a scorer.
- ``store_columns`` — a scored batch as the alert store's columns (jobs and the API share it).

May import: features, registry, alerts, data, io and the base modules (config, schemas, vocab).
Used by serving, training (head-to-head), jobs, api and monitoring.
"""
