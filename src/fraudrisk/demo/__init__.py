"""The steps of ``make demo`` (``fraudrisk demo``), on embedded defaults under FRAUDRISK_HOME.

- ``run`` — :func:`~fraudrisk.demo.run.run_demo`, the steps in order.
- ``steps`` — steps 1-5: simulate, summarise, build features, serve them online, train.
- ``serving_step`` (6), ``stream_step`` (7), ``drift_step`` (8).

May import anything but the CLI.
"""
