"""Showcases are streamed through a media server: push secrets, who is streaming, replays;
halls get an order, an auto on-air switch and a grace period; pushes are logged.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 13:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('halls') as batch_op:
        batch_op.add_column(sa.Column('position', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('auto_on_air', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('grace_minutes', sa.Integer(), server_default='10', nullable=False))
    with op.batch_alter_table('showcases') as batch_op:
        batch_op.add_column(sa.Column('stream_secret', sa.String(length=64), server_default='', nullable=False))
        batch_op.add_column(sa.Column('streaming_client', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('stream_started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('stream_ended_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('stream_signature', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('replay_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('replay_size', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('replay_duration_ms', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('replay_hidden', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        'push_attempts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('hall_id', sa.Integer(), nullable=True),
        sa.Column('showcase_id', sa.Integer(), nullable=True),
        sa.Column('stream_name', sa.String(length=100), nullable=False),
        sa.Column('accepted', sa.Boolean(), nullable=False),
        sa.Column('reason', sa.String(length=30), nullable=False),
        sa.Column('addr', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(['hall_id'], ['halls.id'], name=op.f('fk_push_attempts_hall_id_halls'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['showcase_id'], ['showcases.id'], name=op.f('fk_push_attempts_showcase_id_showcases'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_push_attempts')),
    )
    op.create_index('ix_push_attempts_hall_id_id', 'push_attempts', ['hall_id', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_push_attempts_hall_id_id', table_name='push_attempts')
    op.drop_table('push_attempts')
    with op.batch_alter_table('showcases') as batch_op:
        for column in ('replay_hidden', 'replay_duration_ms', 'replay_size', 'replay_sha256',
                       'stream_signature', 'stream_ended_at', 'stream_started_at',
                       'streaming_client', 'stream_secret'):
            batch_op.drop_column(column)
    with op.batch_alter_table('halls') as batch_op:
        batch_op.drop_column('grace_minutes')
        batch_op.drop_column('auto_on_air')
        batch_op.drop_column('position')
