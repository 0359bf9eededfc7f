"""Training: splits and protocol, tuning, training, calibration, evaluation, gate, pipeline steps.

- ``splits`` / ``protocol`` / ``holdout`` / ``metrics`` — the handbook's evaluation protocol.
- ``recipes`` / ``estimators`` / ``tune`` / ``calibrate`` / ``thresholds`` / ``explain`` —
  what a model is and how it is fitted, tuned, calibrated, thresholded and explained.
- ``gate`` / ``head_to_head`` — the validation gate, champion and candidate on the same rows.
- ``dataset`` / ``steps`` / ``step_files`` / ``report`` / ``run`` / ``results`` — the pipeline's
  stages as plain functions, in-process runs and their results.
- ``pipelines`` / ``launch`` — the Kubeflow pipelines loaded, run locally or submitted.

May import: scoring, registry, features and below.
"""
