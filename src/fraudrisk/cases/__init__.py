"""Alerts become cases that analysts route, work and resolve; resolutions become labels.

- ``tables`` — queues, members, cases, case alerts, the case timeline (made by migrations).
- ``lifecycle`` — statuses, actions, legal moves, dispositions and the label of each.
- ``routing`` (+ ``routing.yaml``) — versioned rules picking a case's queue.
- ``ingest`` — pending alerts → cases, exactly once, in bulk; priority = expected loss.
- ``queries`` / ``views`` — queue pages and the case view, limited to the caller's queues.
- ``work`` — moves, comments, claim-next, bulk actions (versioned, audited).
- ``queues`` — queue membership and figures.
- ``baselines`` — the customer's usual value of each reason-code feature (feature table).
- ``labels`` / ``chargebacks`` — resolutions and chargeback feeds become labels.
- ``http`` / ``api`` — the case API (FastAPI): bearer auth, Problem JSON, the routes.
- ``service`` — the service assembled from the settings; the background ingest loop.

May import features, data, identity, alerts, io, config and the base modules.
"""
