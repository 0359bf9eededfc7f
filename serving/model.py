"""The ``kserve.Model`` subclass this image serves.

Defined in :mod:`fraudrisk.inference.service`.
"""

from fraudrisk.inference.service import FraudRiskModel, ServiceSpec

__all__ = ["FraudRiskModel", "ServiceSpec"]
