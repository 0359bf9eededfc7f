"""The policy tables (created by the migrations of :mod:`fraudrisk.io.database`)."""

from __future__ import annotations

import sqlalchemy as sa

from fraudrisk.io.database import APP_METADATA

POLICY_VERSIONS = sa.Table(
    "policy_versions",
    APP_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("based_on", sa.Integer, sa.ForeignKey("policy_versions.id")),
    sa.Column("author", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("submitted_at", sa.DateTime),
    sa.Column("approver", sa.String(64)),
    sa.Column("approved_at", sa.DateTime),
    sa.Column("activated_by", sa.String(64)),
    sa.Column("activated_at", sa.DateTime),
    sa.Column("retired_at", sa.DateTime),
)
#: At most one active version, enforced by the database.
sa.Index(
    "ux_policy_versions_active",
    POLICY_VERSIONS.c.status,
    unique=True,
    postgresql_where=POLICY_VERSIONS.c.status == "active",
    sqlite_where=POLICY_VERSIONS.c.status == "active",
)
