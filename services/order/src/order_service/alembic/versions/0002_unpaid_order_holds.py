"""holds: what unpaid orders count against their customer's limits

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:00:00.000000

Orders already ``PENDING_PAYMENT`` get their holds and their customers' totals
here, so the limits count them from the first request after the upgrade.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("units > 0", name=op.f("ck_holds_units_positive")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_holds")),
    )
    op.create_index("ix_holds_taken_at", "holds", ["taken_at"], unique=False)
    op.create_table(
        "customer_holds",
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("open_orders", sa.Integer(), nullable=False),
        sa.Column("open_units", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "open_orders >= 0", name=op.f("ck_customer_holds_open_orders_not_negative")
        ),
        sa.CheckConstraint(
            "open_units >= 0", name=op.f("ck_customer_holds_open_units_not_negative")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_holds")),
    )
    # Backfill: one hold per unpaid order (its units, taken when it was placed), then the totals.
    op.execute(
        """
        INSERT INTO holds (order_id, customer_id, units, taken_at)
        SELECT o.id, o.customer_id, SUM(i.quantity), o.created_at
        FROM orders o JOIN order_items i ON i.order_id = o.id
        WHERE o.status = 'PENDING_PAYMENT'
        GROUP BY o.id, o.customer_id, o.created_at
        """
    )
    op.execute(
        """
        INSERT INTO customer_holds (customer_id, open_orders, open_units)
        SELECT customer_id, COUNT(*), SUM(units) FROM holds GROUP BY customer_id
        """
    )


def downgrade() -> None:
    op.drop_table("customer_holds")
    op.drop_index("ix_holds_taken_at", table_name="holds")
    op.drop_table("holds")
