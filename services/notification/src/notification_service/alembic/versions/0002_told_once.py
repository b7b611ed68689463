"""one notification per recipient, order and kind

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:00:00.000000

A unique index, so two copies of one event (different event ids) handled at
the same time cannot both tell the customer. NULLs are distinct on SQLite and
PostgreSQL, so broadcasts (no recipient, no order) are unaffected. A database
that already holds such duplicates (only possible through that race) must be
cleaned up before this runs.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "uq_notifications_recipient_order_id_kind",
        "notifications",
        ["recipient", "order_id", "kind"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_notifications_recipient_order_id_kind", table_name="notifications")
