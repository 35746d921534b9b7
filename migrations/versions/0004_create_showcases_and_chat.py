"""Create showcases, chat messages and fair audiences; give halls their figures and on-air show.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 07:51:06.898380

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

ON_AIR_FK = 'fk_halls_on_air_showcase_id_showcases'


def upgrade():
    op.create_table('showcases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hall_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_showcases_ends_after_start')),
    sa.ForeignKeyConstraint(['hall_id'], ['halls.id'], name=op.f('fk_showcases_hall_id_halls'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_showcases_project_id_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_showcases'))
    )
    with op.batch_alter_table('showcases', schema=None) as batch_op:
        batch_op.create_index('ix_showcases_hall_slot', ['hall_id', 'starts_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_showcases_project_id'), ['project_id'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        # btree_gist lets a GiST exclusion constraint compare the integer hall_id with `=`;
        # it is a trusted contrib extension, left installed on downgrade for any other user.
        op.execute('CREATE EXTENSION IF NOT EXISTS btree_gist')
        op.execute(
            'ALTER TABLE showcases ADD CONSTRAINT ex_showcases_no_overlap '
            'EXCLUDE USING gist (hall_id WITH =, tstzrange(starts_at, ends_at) WITH &&)'
        )

    op.create_table('chat_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hall_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('hidden_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hidden_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['hall_id'], ['halls.id'], name=op.f('fk_chat_messages_hall_id_halls'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['hidden_by_id'], ['users.id'], name=op.f('fk_chat_messages_hidden_by_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_chat_messages_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_messages'))
    )
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.create_index('ix_chat_messages_hall_id_id', ['hall_id', 'id'], unique=False)
        batch_op.create_index('ix_chat_messages_user_created', ['user_id', 'created_at'], unique=False)

    op.create_table('fair_audiences',
    sa.Column('fair_id', sa.Integer(), nullable=False),
    sa.Column('peak_viewers', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['fair_id'], ['fairs.id'], name=op.f('fk_fair_audiences_fair_id_fairs')),
    sa.PrimaryKeyConstraint('fair_id', name=op.f('pk_fair_audiences'))
    )

    op.add_column('halls', sa.Column('visits', sa.BigInteger(), server_default='0', nullable=False))
    op.add_column('halls', sa.Column('peak_viewers', sa.Integer(), server_default='0', nullable=False))
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite adds a nullable column with its reference in place. Batch mode would copy
        # and drop `halls`, which fails once intents refer to its rows.
        op.execute(
            'ALTER TABLE halls ADD COLUMN on_air_showcase_id INTEGER '
            f'CONSTRAINT {ON_AIR_FK} REFERENCES showcases (id)'
        )
    else:
        op.add_column('halls', sa.Column('on_air_showcase_id', sa.Integer(), nullable=True))
        op.create_foreign_key(ON_AIR_FK, 'halls', 'showcases', ['on_air_showcase_id'], ['id'])


def downgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        # Batch mode copies `halls` and drops the original; with foreign keys enforced that
        # drop fails as soon as an intent refers to a hall.
        op.execute('PRAGMA foreign_keys=OFF')
    with op.batch_alter_table('halls', schema=None) as batch_op:
        if not sqlite:
            batch_op.drop_constraint(ON_AIR_FK, type_='foreignkey')
        batch_op.drop_column('on_air_showcase_id')
        batch_op.drop_column('peak_viewers')
        batch_op.drop_column('visits')

    op.drop_table('fair_audiences')

    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_chat_messages_user_created')
        batch_op.drop_index('ix_chat_messages_hall_id_id')
    op.drop_table('chat_messages')

    with op.batch_alter_table('showcases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_showcases_project_id'))
        batch_op.drop_index('ix_showcases_hall_slot')
    op.drop_table('showcases')
    if sqlite:
        op.execute('PRAGMA foreign_keys=ON')
