"""Kubeflow pipelines of fraudrisk: DAG wiring only, configuration in ``configs/*.yaml``.

``pipelines`` and ``components`` are top-level packages of the repository, not of the installed
``fraudrisk`` wheel: :func:`fraudrisk.pipeline_cli.load_pipeline_module` puts the repository
root on ``sys.path`` and imports ``pipelines.<name>``.
"""
