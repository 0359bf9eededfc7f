"""KFP components of the fraudrisk pipelines: one component per file, body ≈ one call.

Every component runs in :data:`FRAUDRISK_IMAGE` on a cluster, an image with ``fraudrisk`` and
``kfp`` installed, so nothing is pip-installed at run time (``PACKAGES`` is empty and the KFP
package is not installed by the component). Locally, ``kfp.local.SubprocessRunner(use_venv=False)``
runs the same bodies in the current interpreter, where ``fraudrisk`` is installed.
"""

import os

#: Cluster base image of every component (override with ``FRAUDRISK_IMAGE`` at compile time).
FRAUDRISK_IMAGE = os.environ.get("FRAUDRISK_IMAGE", "ghcr.io/fraudrisk/fraudrisk:0.1.0")
#: Extra packages installed at run time: none, the image carries them.
PACKAGES: list[str] = []
