"""The dashboard: one web application for analysts, risk teams and MLOps engineers.

Server-rendered Jinja2 pages with htmx, charts drawn by Apache ECharts, over the same case and
identity services the case API calls (never a second copy of who may do what).

- ``app`` — :func:`~fraudrisk.dashboard.app.create_dashboard` (the app factory over
  ``CaseServices``), static files, the error pages (403, 404, 409).
- ``nav`` — the pages and the permission each needs: the navigation and the page guards.
- ``session`` — the session cookie (the identity service's opaque token), the signed-in person.
- ``security`` — the Content-Security-Policy and other headers, CSRF tokens and their checks.
- ``auth_pages`` — sign in (password + TOTP code), sign out, sign out everywhere.
- ``case_pages`` — my queue, the team's queues, claim next, the case page and its actions.
- ``charts`` — the ECharts options of the pages (plain data in ``data-chart`` attributes).
- ``rendering`` — the templates' environment and filters (every output redacts card numbers).
- ``assets`` (+ ``npm/``) — htmx and ECharts vendored from npm at build time, into a cache.
- ``settings`` — ``FRAUDRISK_DASHBOARD__*``: port, secure cookies, assets folder.
- ``templates/``, ``static/`` — the pages and our own script and styles.

May import cases, identity, io, config and the base modules; nothing below imports it.
"""
