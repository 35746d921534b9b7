"""The audience: behaviour events and their rollups, favourites, share links and replay parts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 13:04:03.728027

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('audience_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fair_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('hall_id', sa.Integer(), nullable=True),
    sa.Column('showcase_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('visitor', sa.String(length=32), nullable=True),
    sa.Column('buyer_province', sa.String(length=5), nullable=True),
    sa.Column('buyer_organisation_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=30), nullable=True),
    sa.Column('sharer_id', sa.Integer(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audience_events'))
    )
    with op.batch_alter_table('audience_events', schema=None) as batch_op:
        batch_op.create_index('ix_audience_events_at', ['at'], unique=False)
        batch_op.create_index('ix_audience_events_user_id', ['user_id'], unique=False)
        batch_op.create_index('ix_audience_events_visitor', ['visitor'], unique=False)

    op.create_table('audience_imports',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('source', name=op.f('pk_audience_imports'))
    )
    op.create_table('audience_reach',
    sa.Column('fair_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('project_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('province', sa.String(length=5), nullable=False),
    sa.Column('actor', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('fair_id', 'project_id', 'kind', 'province', 'actor', name=op.f('pk_audience_reach'))
    )
    op.create_table('audience_rollups',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('fair_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('project_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('hall_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('showcase_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('category', sa.String(length=30), nullable=False),
    sa.Column('province', sa.String(length=5), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('seconds', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'fair_id', 'kind', 'project_id', 'hall_id', 'showcase_id', 'category', 'province', name=op.f('pk_audience_rollups'))
    )
    with op.batch_alter_table('audience_rollups', schema=None) as batch_op:
        batch_op.create_index('ix_audience_rollups_fair_kind', ['fair_id', 'kind', 'day'], unique=False)
        batch_op.create_index('ix_audience_rollups_fair_project', ['fair_id', 'project_id'], unique=False)

    op.create_table('audience_breakdown',
    sa.Column('fair_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('dimension', sa.String(length=10), nullable=False),
    sa.Column('key', sa.String(length=30), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('seconds', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('fair_id', 'kind', 'dimension', 'key', name=op.f('pk_audience_breakdown'))
    )

    op.create_table('audience_searches',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('fair_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('terms', sa.String(length=100), nullable=False),
    sa.Column('searches', sa.BigInteger(), nullable=False),
    sa.Column('zero_results', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'fair_id', 'terms', name=op.f('pk_audience_searches'))
    )
    op.create_table('favourites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fair_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('visitor', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['fair_id'], ['fairs.id'], name=op.f('fk_favourites_fair_id_fairs')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_favourites_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_favourites_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_favourites')),
    sa.UniqueConstraint('project_id', 'user_id', name='uq_favourites_project_user'),
    sa.UniqueConstraint('project_id', 'visitor', name='uq_favourites_project_visitor')
    )
    with op.batch_alter_table('favourites', schema=None) as batch_op:
        batch_op.create_index('ix_favourites_user_id', ['user_id'], unique=False)
        batch_op.create_index('ix_favourites_visitor', ['visitor'], unique=False)

    op.create_table('shares',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('fair_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('visitor', sa.String(length=32), nullable=True),
    sa.Column('visits', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['fair_id'], ['fairs.id'], name=op.f('fk_shares_fair_id_fairs')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_shares_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_shares_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shares')),
    sa.UniqueConstraint('code', name='uq_shares_code')
    )
    with op.batch_alter_table('shares', schema=None) as batch_op:
        batch_op.create_index('ix_shares_user_id', ['user_id'], unique=False)



def downgrade():
    with op.batch_alter_table('shares', schema=None) as batch_op:
        batch_op.drop_index('ix_shares_user_id')

    op.drop_table('shares')
    with op.batch_alter_table('favourites', schema=None) as batch_op:
        batch_op.drop_index('ix_favourites_visitor')
        batch_op.drop_index('ix_favourites_user_id')

    op.drop_table('favourites')
    op.drop_table('audience_searches')
    op.drop_table('audience_breakdown')
    with op.batch_alter_table('audience_rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_audience_rollups_fair_project')
        batch_op.drop_index('ix_audience_rollups_fair_kind')

    op.drop_table('audience_rollups')
    op.drop_table('audience_reach')
    op.drop_table('audience_imports')
    with op.batch_alter_table('audience_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audience_events_visitor')
        batch_op.drop_index('ix_audience_events_user_id')
        batch_op.drop_index('ix_audience_events_at')

    op.drop_table('audience_events')
