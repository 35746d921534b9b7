"""A refund is claimed by the process that sends it, so that two consumers never both send it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payments') as batch_op:
        batch_op.add_column(sa.Column('refund_claimed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('payments') as batch_op:
        batch_op.drop_column('refund_claimed_at')
