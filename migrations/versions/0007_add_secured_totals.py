"""A fair's totals carry its secured intents (deposit paid): how many, and what they are worth.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# The signing functions (fair_totals_move, fair_sign_intent) create a fair's totals row without
# naming these columns, so they take server defaults and the functions stay as they are;
# deals.totals.move_secured moves them in a statement of its own.
BACKFILL = """
UPDATE fair_totals SET
    secured_amount_fen = (SELECT coalesce(sum(i.amount_fen), 0) FROM intents AS i
                           WHERE i.fair_id = fair_totals.fair_id AND i.status = 'active'
                             AND i.secured),
    secured_count = (SELECT count(*) FROM intents AS i
                      WHERE i.fair_id = fair_totals.fair_id AND i.status = 'active'
                        AND i.secured)
"""


def upgrade():
    with op.batch_alter_table('fair_totals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secured_amount_fen', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('secured_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_check_constraint(op.f('ck_fair_totals_secured_amount_not_negative'), 'secured_amount_fen >= 0')
        batch_op.create_check_constraint(op.f('ck_fair_totals_secured_count_not_negative'), 'secured_count >= 0')
    # Intents secured before this revision count from now on.
    op.execute(BACKFILL)


def downgrade():
    with op.batch_alter_table('fair_totals', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_fair_totals_secured_count_not_negative'), type_='check')
        batch_op.drop_constraint(op.f('ck_fair_totals_secured_amount_not_negative'), type_='check')
        batch_op.drop_column('secured_count')
        batch_op.drop_column('secured_amount_fen')
