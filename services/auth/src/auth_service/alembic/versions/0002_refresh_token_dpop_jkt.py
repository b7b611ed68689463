"""refresh tokens of public clients can be DPoP-bound (RFC 9449 §5)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("refresh_tokens", sa.Column("dpop_jkt", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite rebuilds the table instead of ALTER TABLE DROP COLUMN.
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("dpop_jkt")
