"""a partial index of revoked refresh tokens by family, for the authentication read

Revision ID: 0012_revoked_family_index
Revises: 0011_portfolio_rollups
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_revoked_family_index"
down_revision: str | None = "0011_portfolio_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every authenticated request asks whether its token's family was revoked; only revoked rows
    # are indexed, so the probe is one index lookup however many times the session rotated.
    op.create_index(
        "ix_refresh_tokens_revoked_family_id",
        "refresh_tokens",
        ["family_id"],
        postgresql_where=sa.text("revoked_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_revoked_family_id", table_name="refresh_tokens")
