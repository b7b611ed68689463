"""a per-customer cap on the units of a product held unpaid

Products get ``max_held_per_customer`` (NULL: no cap; existing rows get NULL),
and reservations an index on (subject, status), so the units one subject's
unpaid reservations hold are summed without a scan.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("products", sa.Column("max_held_per_customer", sa.Integer(), nullable=True))
    op.create_index(
        "ix_reservations_subject_status", "reservations", ["subject", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_reservations_subject_status", table_name="reservations")
    # Native DROP COLUMN (SQLite 3.35+): batch mode's copy of the table would trip the
    # foreign keys that stock and reservation_items hold on it.
    op.drop_column("products", "max_held_per_customer")
