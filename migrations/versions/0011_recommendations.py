"""The recommender's stored model, one per fair.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 13:55:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('recommend_models',
    sa.Column('fair_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['fair_id'], ['fairs.id'], name=op.f('fk_recommend_models_fair_id_fairs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('fair_id', name=op.f('pk_recommend_models'))
    )


def downgrade():
    op.drop_table('recommend_models')
