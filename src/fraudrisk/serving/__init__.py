"""The KServe runtime: the scorer as a KServe ``Model`` in a ``ModelServer``.

- ``kserve_model`` — :class:`~fraudrisk.serving.kserve_model.FraudRiskModel` (V1 and V2).
- ``wire_protocol`` — the V1 ``instances`` and V2 Open Inference Protocol contracts.
- ``variants`` / ``router`` — stable + candidate variants, canary / A/B / shadow traffic.
- ``server`` / ``asgi`` / ``workers`` — the ModelServer on a chosen address, the lean V2 route,
  several worker processes on one port.
- ``manifest`` / ``local`` — what an InferenceService manifest asks to serve, and the local
  runner that serves it (watching the file for traffic changes).
- ``prometheus`` — per-variant metrics on ``/metrics``.

May import: scoring and below. Never release (the canary tooling sits above the runtime).
"""
