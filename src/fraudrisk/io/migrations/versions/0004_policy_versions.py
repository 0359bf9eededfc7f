"""Decision-policy versions: the texts, their authors and approvers, at most one active.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``policy_versions``."""
    op.create_table(
        "policy_versions",
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
    active = sa.text("status = 'active'")
    op.create_index(
        "ux_policy_versions_active",
        "policy_versions",
        ["status"],
        unique=True,
        postgresql_where=active,
        sqlite_where=active,
    )


def downgrade() -> None:
    """Drop it (every version with it)."""
    op.drop_table("policy_versions")
