"""Projects may carry an English title and summary beside the Chinese ones; a rejected
application carries the organiser's reason, which the exhibitor reads; a buyer gives a phone
number that exhibitors see on the intents it signs for their projects; organisers mute or ban a
user in a hall's chat (chat_sanctions).

Revision ID: 0012_english_text
Revises: 0011
Create Date: 2026-12-02 13:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_english_text'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('projects') as batch_op:
        batch_op.add_column(sa.Column('title_en', sa.String(length=200), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('summary_en', sa.String(length=500), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=30), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('exhibitors') as batch_op:
        batch_op.add_column(sa.Column('rejection_reason', sa.String(length=500), nullable=False,
                                      server_default=''))
    op.create_table('chat_sanctions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hall_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('mute', 'ban', name='sanction_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['by_id'], ['users.id'], name=op.f('fk_chat_sanctions_by_id_users')),
    sa.ForeignKeyConstraint(['hall_id'], ['halls.id'], name=op.f('fk_chat_sanctions_hall_id_halls'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_chat_sanctions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_sanctions')),
    sa.UniqueConstraint('hall_id', 'user_id', name='uq_chat_sanctions_hall_user')
    )


# SQLite drops a column in place (3.35 and later): copying the tables instead would break
# the foreign keys that point at them.
def downgrade():
    op.drop_table('chat_sanctions')
    with op.batch_alter_table('users', recreate='never') as batch_op:
        batch_op.drop_column('phone')
    with op.batch_alter_table('exhibitors', recreate='never') as batch_op:
        batch_op.drop_column('rejection_reason')
    with op.batch_alter_table('projects', recreate='never') as batch_op:
        batch_op.drop_column('summary_en')
        batch_op.drop_column('title_en')
