"""The label outbox: a resolution's labels, kept with it until the table and topic took them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``label_outbox``."""
    op.create_table(
        "label_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("stored_at", sa.DateTime),
        sa.Column("sent_at", sa.DateTime),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_label_outbox_case_id", "label_outbox", ["case_id"])
    op.create_index("ix_label_outbox_pending", "label_outbox", ["stored_at", "sent_at"])


def downgrade() -> None:
    """Drop it (undelivered labels with it)."""
    op.drop_table("label_outbox")
