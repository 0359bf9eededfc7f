"""Users of an identity provider (OIDC): the issuer and subject that name them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the external identity of a user (unique per issuer and subject)."""
    op.add_column("users", sa.Column("external_issuer", sa.String(255)))
    op.add_column("users", sa.Column("external_subject", sa.String(255)))
    op.create_index(
        "ux_users_external", "users", ["external_issuer", "external_subject"], unique=True
    )


def downgrade() -> None:
    """Drop it (the users it provisioned stay, as users nobody can log in as)."""
    op.drop_index("ux_users_external", table_name="users")
    op.drop_column("users", "external_subject")
    op.drop_column("users", "external_issuer")
