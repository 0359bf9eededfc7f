"""Decision policy: thresholds on the calibrated risk + rules + the alert budget, as YAML.

- ``expressions`` / ``syntax`` — the rule language: tokens and parser (never Python's
  eval/ast), the syntax tree.
- ``types`` / ``checker`` — the names rules read and their types (transaction schema, the
  features, ``risk``, ``reasons``), the functions, the type checker.
- ``scalar`` / ``vector`` — a checked expression compiled for one transaction (closures) or a
  batch (numpy columns); the two agree.
- ``document`` — the policy file's pydantic model, the actions and their precedence, a checked
  policy; ``loader`` — YAML with positions (every problem ``file:line:col: message``), the
  bundled default (``policies/default.yaml``, package data ``fraudrisk.policies``).
- ``positions`` — where a character of a YAML scalar sits in the file.
- ``inputs`` / ``engine`` — a scored batch or transaction in, decisions, fired rules, reasons,
  route and priority factor out.
- ``errors`` — problems with positions.
- ``tables`` / ``versions`` / ``linting`` — stored versions and four-eyes approval (draft →
  pending → approved → active → retired, rollback), each text linted as ``policy lint`` does.
- ``backtest_window`` / ``backtest`` / ``backtest_figures`` / ``backtest_sweeps`` /
  ``backtest_results`` / ``backtest_report`` / ``backtest_plots`` — a labelled window of the
  lake scored in batch by the champion, the candidate and active policies' figures per rule and
  across thresholds (cost- and budget-optimal points), as JSON, tables and PNGs.
- ``live_version`` / ``live`` — the active version as the scorers apply it, reloaded without a
  restart when another is activated; ``shadow`` — a pending version decided beside it on the
  same batches, stored, never returned.

May import: scoring, registry, features, alerts, data, identity, io and the base modules
(config, console, schemas, vocab). Used by cli, jobs, api and cases; serving is handed a
live policy by the cli (the two are independent siblings of one layer).
"""
