"""The KServe scorer image's entrypoint (``python -m serving``).

Logic lives in ``fraudrisk.inference``.
"""
