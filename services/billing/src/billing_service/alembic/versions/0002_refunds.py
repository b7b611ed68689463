"""an invoice can be refunded

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 17:00:00

A payment whose order was cancelled before order saw it is given back
(``POST /internal/orders/{id}/refund``): the invoice becomes ``REFUNDED`` and
keeps the provider's id of the refund. The status check constraint is
replaced, not altered (no database alters a CHECK in place); batch mode,
because SQLite rebuilds the table instead.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("refund_reference", sa.String(length=64), nullable=True))
        batch.drop_constraint(op.f("ck_invoices_status_known"), type_="check")
        batch.create_check_constraint(
            op.f("ck_invoices_status_known"), "status IN ('PAID', 'DECLINED', 'REFUNDED')"
        )


def downgrade() -> None:
    # A refunded invoice cannot be told in the old schema: it must be gone or PAID first.
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint(op.f("ck_invoices_status_known"), type_="check")
        batch.create_check_constraint(
            op.f("ck_invoices_status_known"), "status IN ('PAID', 'DECLINED')"
        )
        batch.drop_column("refund_reference")
