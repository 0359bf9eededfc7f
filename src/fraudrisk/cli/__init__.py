"""The ``fraudrisk`` command line, one module per command group or set of top-level commands.

Registration style (one for every module): a module defines its commands at module level on
its own ``app = typer.Typer(...)``; it never adds commands to another module's app. A group
module names its app (``typer.Typer(name="kafka", ...)``), a module of top-level commands
does not, and :mod:`~fraudrisk.cli.main` adds every module's app with
``root.add_typer(module.app)`` in one list (add_typer of an app without a name merges its
commands into the root). A group too large for one module composes its sub-modules' nameless
apps the same way, in the group module (``monitor``). Function-level imports are only for
heavy libraries (marked ``# heavy: ...``), so that ``fraudrisk --help`` stays fast.

Modules:

- :mod:`~fraudrisk.cli.main`: the root app ``fraudrisk`` and the ``main`` entry point.
- Top-level commands: :mod:`~fraudrisk.cli.demo` (``demo``), :mod:`~fraudrisk.cli.data`
  (``simulate``), :mod:`~fraudrisk.cli.ingest` (``ingest``), :mod:`~fraudrisk.cli.train`
  (``train``, ``evaluate``), :mod:`~fraudrisk.cli.serve` (``serve``).
- Groups: :mod:`~fraudrisk.cli.config` (``config``), :mod:`~fraudrisk.cli.lake` (``lake``),
  :mod:`~fraudrisk.cli.features` (``features``: Spark build and Feast), :mod:`~fraudrisk.cli.kafka`
  (``kafka``), :mod:`~fraudrisk.cli.stream` (``stream``: Kafka ``score`` and ``kinesis``),
  :mod:`~fraudrisk.cli.pipeline` (``pipeline``), :mod:`~fraudrisk.cli.canary` (``canary``),
  :mod:`~fraudrisk.cli.api` (``api``, with ``api keys``), :mod:`~fraudrisk.cli.score`
  (``score``), :mod:`~fraudrisk.cli.monitor` (``monitor``, composing
  :mod:`~fraudrisk.cli.monitor_performance` and :mod:`~fraudrisk.cli.monitor_watch`).
"""
