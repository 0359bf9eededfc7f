"""The bundled decision policies, shipped in the wheel as ``fraudrisk.policies`` (package data).

``default.yaml`` is the policy ``make demo`` activates and the example to copy; it is read with
``importlib.resources`` (:func:`fraudrisk.policy.loader.default_policy_text`). No code here.
"""
