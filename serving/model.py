"""The ``kserve.Model`` subclass this image serves.

Defined in :mod:`fraudrisk.serving.kserve_model`.
"""

from fraudrisk.serving.kserve_model import FraudRiskModel, ServiceSpec

__all__ = ["FraudRiskModel", "ServiceSpec"]
