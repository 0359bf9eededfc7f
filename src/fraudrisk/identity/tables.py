"""The identity tables (created by the migrations of :mod:`fraudrisk.io.database`).

Secrets are never stored as given: passwords as Argon2id hashes, session and API tokens and
recovery codes as SHA-256 of high-entropy random values, TOTP secrets sealed with the
platform's key (:mod:`fraudrisk.identity.sealing`). A user of the corporate identity
provider (:mod:`fraudrisk.identity.oidc`) has no password nor TOTP seed, and is found by the
provider's issuer and subject.
"""

from __future__ import annotations

import sqlalchemy as sa

from fraudrisk.io.database import APP_METADATA

USERS = sa.Table(
    "users",
    APP_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("totp_secret", sa.Text),
    sa.Column("totp_last_step", sa.BigInteger),
    sa.Column("mfa_required", sa.Boolean, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False),
    sa.Column("locked_until", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    # A user of an identity provider (OIDC): its issuer and the subject it names them by.
    sa.Column("external_issuer", sa.String(255)),
    sa.Column("external_subject", sa.String(255)),
    sa.Index("ux_users_external", "external_issuer", "external_subject", unique=True),
)
RECOVERY_CODES = sa.Table(
    "recovery_codes",
    APP_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("used_at", sa.DateTime),
)
TOKENS = sa.Table(
    "tokens",
    APP_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
    sa.Column("last_used_at", sa.DateTime),
)
AUDIT_LOG = sa.Table(
    "audit_log",
    APP_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False, index=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(32), nullable=False),
    sa.Column("object_id", sa.String(64), nullable=False),
    sa.Column("change", sa.Text, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
