"""Kubeflow pipelines of fraudrisk: DAG wiring only, configuration in ``configs/*.yaml``.

This folder is the package ``fraudrisk.pipelines`` (and ``components/`` is
``fraudrisk.components``): pyproject's ``[tool.setuptools.package-dir]`` maps both into the
``fraudrisk`` package, in the editable checkout and in the wheel alike, with ``configs/`` as
package data. :func:`fraudrisk.training.pipelines.load_pipeline_module` imports
``fraudrisk.pipelines.<name>``.
"""
