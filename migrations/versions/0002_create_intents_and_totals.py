"""Create intents, their idempotency keys and the fairs' running totals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 07:50:31.952133

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# 100,000,000.00 yuan in fen: fair.money.MAX_DEAL_FEN when this revision was written.
MAX_DEAL_FEN = 10_000_000_000

# PostgreSQL only: the part of deals.totals that runs while the fair's FairTotals row is locked,
# as one call, so that the lock is held for one round trip to the database and not three.
# Each statement in it takes a fresh snapshot (READ COMMITTED), so the breakdown rows it reads
# after taking the lock include every change committed before. deals/totals.py runs the same
# statements one by one on SQLite; the two must change together.
MOVE_TOTALS_FUNCTION = """
CREATE FUNCTION fair_totals_move(
    p_fair integer, p_amount bigint, p_deals integer, p_projects integer, p_buyers integer,
    p_dimensions text[], p_keys text[], p_since bigint
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    moved fair_totals;
    earlier jsonb;
    own jsonb;
BEGIN
    UPDATE fair_totals AS t
       SET seq = t.seq + 1, amount_fen = t.amount_fen + p_amount,
           deal_count = t.deal_count + p_deals, project_count = t.project_count + p_projects,
           buyer_count = t.buyer_count + p_buyers
     WHERE t.fair_id = p_fair
    RETURNING t.* INTO moved;
    IF NOT FOUND THEN
        INSERT INTO fair_totals (fair_id, seq, amount_fen, deal_count, project_count, buyer_count)
        VALUES (p_fair, 0, 0, 0, 0, 0) ON CONFLICT (fair_id) DO NOTHING;
        UPDATE fair_totals AS t
           SET seq = t.seq + 1, amount_fen = t.amount_fen + p_amount,
               deal_count = t.deal_count + p_deals, project_count = t.project_count + p_projects,
               buyer_count = t.buyer_count + p_buyers
         WHERE t.fair_id = p_fair
        RETURNING t.* INTO moved;
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_array(b.dimension, b.key, b.amount_fen, b.deal_count)),
                    '[]'::jsonb)
      INTO earlier
      FROM fair_totals_breakdown AS b
     WHERE b.fair_id = p_fair AND b.seq > p_since;
    IF p_deals > 0 THEN
        WITH changed AS (
            INSERT INTO fair_totals_breakdown AS b
                   (fair_id, dimension, key, amount_fen, deal_count, seq)
            SELECT p_fair, u.dimension, u.key, p_amount, 1, moved.seq
              FROM unnest(p_dimensions, p_keys) AS u (dimension, key)
            ON CONFLICT (fair_id, dimension, key) DO UPDATE
               SET amount_fen = b.amount_fen + excluded.amount_fen,
                   deal_count = b.deal_count + 1, seq = excluded.seq
            RETURNING b.dimension, b.key, b.amount_fen, b.deal_count)
        SELECT jsonb_agg(jsonb_build_array(c.dimension, c.key, c.amount_fen, c.deal_count))
          INTO own FROM changed AS c;
    ELSE
        WITH changed AS (
            UPDATE fair_totals_breakdown AS b
               SET amount_fen = b.amount_fen + p_amount, deal_count = b.deal_count - 1,
                   seq = moved.seq
              FROM unnest(p_dimensions, p_keys) AS u (dimension, key)
             WHERE b.fair_id = p_fair AND b.dimension = u.dimension AND b.key = u.key
            RETURNING b.dimension, b.key, b.amount_fen, b.deal_count)
        SELECT jsonb_agg(jsonb_build_array(c.dimension, c.key, c.amount_fen, c.deal_count))
          INTO own FROM changed AS c;
    END IF;
    RETURN jsonb_build_object(
        'totals', jsonb_build_array(moved.seq, moved.amount_fen, moved.deal_count,
                                    moved.project_count, moved.buyer_count),
        'earlier', earlier, 'own', own);
END
$$
"""


def upgrade():
    op.create_table('intents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fair_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=False),
    sa.Column('buyer_organisation_id', sa.Integer(), nullable=False),
    sa.Column('buyer_province', sa.String(length=5), nullable=False),
    sa.Column('exhibitor_id', sa.Integer(), nullable=False),
    sa.Column('exhibitor_province', sa.String(length=5), nullable=False),
    sa.Column('category', sa.String(length=30), nullable=False),
    sa.Column('hall_id', sa.Integer(), nullable=True),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('status', sa.Enum('active', 'withdrawn', name='intent_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('secured', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_intents_positive_amount')),
    sa.CheckConstraint(f'amount_fen <= {MAX_DEAL_FEN}', name=op.f('ck_intents_amount_within_limit')),
    sa.ForeignKeyConstraint(['fair_id'], ['fairs.id'], name=op.f('fk_intents_fair_id_fairs')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_intents_project_id_projects')),
    sa.ForeignKeyConstraint(['buyer_id'], ['users.id'], name=op.f('fk_intents_buyer_id_users')),
    sa.ForeignKeyConstraint(['buyer_organisation_id'], ['organisations.id'], name=op.f('fk_intents_buyer_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['exhibitor_id'], ['exhibitors.id'], name=op.f('fk_intents_exhibitor_id_exhibitors')),
    sa.ForeignKeyConstraint(['hall_id'], ['halls.id'], name=op.f('fk_intents_hall_id_halls')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intents'))
    )
    with op.batch_alter_table('intents', schema=None) as batch_op:
        batch_op.create_index('ix_intents_fair_buyer', ['fair_id', 'buyer_id'], unique=False)
        batch_op.create_index('ix_intents_fair_exhibitor', ['fair_id', 'exhibitor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intents_project_id'), ['project_id'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('intent_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['buyer_id'], ['users.id'], name=op.f('fk_idempotency_keys_buyer_id_users')),
    sa.ForeignKeyConstraint(['intent_id'], ['intents.id'], name=op.f('fk_idempotency_keys_intent_id_intents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('buyer_id', 'key', name='uq_idempotency_keys_buyer_key')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_intent_id'), ['intent_id'], unique=False)

    op.create_table('fair_totals',
    sa.Column('fair_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('deal_count', sa.Integer(), nullable=False),
    sa.Column('project_count', sa.Integer(), nullable=False),
    sa.Column('buyer_count', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount_fen >= 0', name=op.f('ck_fair_totals_amount_not_negative')),
    sa.CheckConstraint('deal_count >= 0', name=op.f('ck_fair_totals_deal_count_not_negative')),
    sa.ForeignKeyConstraint(['fair_id'], ['fairs.id'], name=op.f('fk_fair_totals_fair_id_fairs')),
    sa.PrimaryKeyConstraint('fair_id', name=op.f('pk_fair_totals'))
    )
    op.create_table('fair_totals_breakdown',
    sa.Column('fair_id', sa.Integer(), nullable=False),
    sa.Column('dimension', sa.Enum('buyer_province', 'exhibitor_province', 'category', 'hall', 'exhibitor', name='totals_dimension', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('key', sa.String(length=30), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('deal_count', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_fen >= 0', name=op.f('ck_fair_totals_breakdown_amount_not_negative')),
    sa.CheckConstraint('deal_count >= 0', name=op.f('ck_fair_totals_breakdown_deal_count_not_negative')),
    sa.ForeignKeyConstraint(['fair_id'], ['fairs.id'], name=op.f('fk_fair_totals_breakdown_fair_id_fairs')),
    sa.PrimaryKeyConstraint('fair_id', 'dimension', 'key', name=op.f('pk_fair_totals_breakdown'))
    )
    op.create_table('fair_totals_members',
    sa.Column('fair_id', sa.Integer(), nullable=False),
    sa.Column('member', sa.Enum('project', 'buyer', name='totals_member', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('member_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('intent_count', sa.Integer(), nullable=False),
    sa.CheckConstraint('intent_count >= 0', name=op.f('ck_fair_totals_members_intent_count_not_negative')),
    sa.ForeignKeyConstraint(['fair_id'], ['fairs.id'], name=op.f('fk_fair_totals_members_fair_id_fairs')),
    sa.PrimaryKeyConstraint('fair_id', 'member', 'member_id', name=op.f('pk_fair_totals_members'))
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(MOVE_TOTALS_FUNCTION)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION fair_totals_move')
    op.drop_table('fair_totals_members')
    op.drop_table('fair_totals_breakdown')
    op.drop_table('fair_totals')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_intent_id'))

    op.drop_table('idempotency_keys')
    with op.batch_alter_table('intents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intents_project_id'))
        batch_op.drop_index('ix_intents_fair_exhibitor')
        batch_op.drop_index('ix_intents_fair_buyer')

    op.drop_table('intents')
