"""Create payments, Stripe events and customers; booth fee and deposit settings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 07:52:38.080119

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# 999,999.99 yuan in fen: fair.money.MAX_CHARGE_FEN (Stripe's per-charge maximum) when written.
MAX_CHARGE_FEN = 99_999_999


def upgrade():
    op.create_table('stripe_events',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_events'))
    )
    op.create_table('stripe_customers',
    sa.Column('user_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('customer_id', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_stripe_customers_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_stripe_customers')),
    sa.UniqueConstraint('customer_id', name=op.f('uq_stripe_customers_customer_id'))
    )
    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.Enum('deposit', 'booth_fee', name='payment_purpose', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('status', sa.Enum('pending', 'succeeded', 'failed', 'refunded', name='payment_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payer_id', sa.Integer(), nullable=False),
    sa.Column('fair_id', sa.Integer(), nullable=False),
    sa.Column('intent_id', sa.Integer(), nullable=True),
    sa.Column('exhibitor_id', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('payment_intent', sa.String(length=255), nullable=True),
    sa.Column('failure_message', sa.String(length=500), nullable=True),
    sa.Column('refund_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("(purpose = 'deposit' AND intent_id IS NOT NULL AND exhibitor_id IS NULL) OR (purpose = 'booth_fee' AND exhibitor_id IS NOT NULL AND intent_id IS NULL)", name=op.f('ck_payments_pays_for_one_thing')),
    sa.CheckConstraint(f'amount_fen <= {MAX_CHARGE_FEN}', name=op.f('ck_payments_amount_within_charge_limit')),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_payments_positive_amount')),
    sa.ForeignKeyConstraint(['exhibitor_id'], ['exhibitors.id'], name=op.f('fk_payments_exhibitor_id_exhibitors')),
    sa.ForeignKeyConstraint(['fair_id'], ['fairs.id'], name=op.f('fk_payments_fair_id_fairs')),
    sa.ForeignKeyConstraint(['intent_id'], ['intents.id'], name=op.f('fk_payments_intent_id_intents')),
    sa.ForeignKeyConstraint(['payer_id'], ['users.id'], name=op.f('fk_payments_payer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('payer_id', 'idempotency_key', name='uq_payments_payer_key'),
    sa.UniqueConstraint('payment_intent', name=op.f('uq_payments_payment_intent'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_exhibitor_id'), ['exhibitor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_fair_id'), ['fair_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_intent_id'), ['intent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_payer_id'), ['payer_id'], unique=False)

    with op.batch_alter_table('exhibitors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('booth_fee_paid', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('fairs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('booth_fee_fen', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('booth_fee_required', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('deposit_percent', sa.Integer(), server_default='10', nullable=False))
        batch_op.create_check_constraint(op.f('ck_fairs_booth_fee_range'), f'booth_fee_fen >= 0 AND booth_fee_fen <= {MAX_CHARGE_FEN}')
        batch_op.create_check_constraint(op.f('ck_fairs_deposit_percent_range'), 'deposit_percent BETWEEN 1 AND 100')


def downgrade():
    with op.batch_alter_table('fairs', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_fairs_deposit_percent_range'), type_='check')
        batch_op.drop_constraint(op.f('ck_fairs_booth_fee_range'), type_='check')
        batch_op.drop_column('deposit_percent')
        batch_op.drop_column('booth_fee_required')
        batch_op.drop_column('booth_fee_fen')

    with op.batch_alter_table('exhibitors', schema=None) as batch_op:
        batch_op.drop_column('booth_fee_paid')

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_payer_id'))
        batch_op.drop_index(batch_op.f('ix_payments_intent_id'))
        batch_op.drop_index(batch_op.f('ix_payments_fair_id'))
        batch_op.drop_index(batch_op.f('ix_payments_exhibitor_id'))

    op.drop_table('payments')
    op.drop_table('stripe_customers')
    op.drop_table('stripe_events')
