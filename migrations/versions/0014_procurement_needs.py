"""Procurement needs (供需对接): needs, their search terms, responses, matches; notifications;
intents carry the need and response they were signed from, on both signing paths.

Revision ID: 0014_procurement_needs
Revises: 0013_verify_organisations
Create Date: 2026-12-02 19:00:00

"""
import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_procurement_needs'
down_revision = '0013_verify_organisations'
branch_labels = None
depends_on = None

ENUM = dict(native_enum=False, create_constraint=True, length=20)

# Revision 0013's fair_sign_intent with two more arguments, the need and the response an intent
# is signed from, stored in the intent (deals.signing.intent_columns does the same on SQLite).
SIGN_INTENT_FUNCTION = """
CREATE FUNCTION fair_sign_intent(
    p_project integer, p_buyer integer, p_buyer_organisation integer, p_buyer_province text,
    p_hall integer, p_amount bigint, p_note text, p_created_at timestamptz, p_key text,
    p_fingerprint text, p_need integer, p_response integer,
    OUT intent_id integer, OUT project_fair integer, OUT project_exhibitor integer,
    OUT project_province text, OUT project_category text, OUT project_title text,
    OUT intent_counted boolean
) LANGUAGE plpgsql AS $$
DECLARE
    project_status text;
    fair_status text;
    ceiling bigint;
    project_intents integer;
    buyer_intents integer;
    dimensions text[] := ARRAY['buyer_province', 'exhibitor_province', 'category', 'exhibitor'];
    keys text[];
BEGIN
    SELECT p.fair_id, p.exhibitor_id, p.province, p.category, p.title, p.status
      INTO project_fair, project_exhibitor, project_province, project_category, project_title,
           project_status
      FROM projects AS p WHERE p.id = p_project;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no_project' USING ERRCODE = 'FA001';
    END IF;
    IF p_hall IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM halls AS h WHERE h.id = p_hall AND h.fair_id = project_fair
    ) THEN
        RAISE EXCEPTION 'hall_not_in_fair' USING ERRCODE = 'FA001';
    END IF;
    SELECT o.verified_at IS NOT NULL INTO intent_counted
      FROM organisations AS o WHERE o.id = p_buyer_organisation FOR SHARE;
    INSERT INTO intents (fair_id, project_id, buyer_id, buyer_organisation_id, buyer_province,
                         exhibitor_id, exhibitor_province, category, hall_id, amount_fen, note,
                         status, created_at, secured, counted, need_id,
                         response_id)
    VALUES (project_fair, p_project, p_buyer, p_buyer_organisation, p_buyer_province,
            project_exhibitor, project_province, project_category, p_hall, p_amount, p_note,
            'active', p_created_at, false, intent_counted, p_need, p_response)
    RETURNING id INTO intent_id;
    INSERT INTO idempotency_keys (buyer_id, key, fingerprint, intent_id)
    VALUES (p_buyer, p_key, p_fingerprint, intent_id);
    IF project_status IS DISTINCT FROM 'published' THEN
        RAISE EXCEPTION 'project_not_published' USING ERRCODE = 'FA001';
    END IF;
    SELECT f.status, f.max_intent_fen INTO fair_status, ceiling
      FROM fairs AS f WHERE f.id = project_fair;
    IF fair_status IS DISTINCT FROM 'open' THEN
        RAISE EXCEPTION 'fair_not_open' USING ERRCODE = 'FA001';
    END IF;
    IF p_amount > ceiling THEN
        RAISE EXCEPTION 'amount_over_ceiling' USING ERRCODE = 'FA001';
    END IF;
    -- Recorded, not counted: its organisation's verification counts it.
    IF NOT intent_counted THEN
        RETURN;
    END IF;
    WITH counted AS (
        INSERT INTO fair_totals_members AS m (fair_id, member, member_id, intent_count)
        VALUES (project_fair, 'project', p_project, 1), (project_fair, 'buyer', p_buyer, 1)
        ON CONFLICT (fair_id, member, member_id)
        DO UPDATE SET intent_count = m.intent_count + 1
        RETURNING m.member, m.intent_count)
    SELECT max(c.intent_count) FILTER (WHERE c.member = 'project'),
           max(c.intent_count) FILTER (WHERE c.member = 'buyer')
      INTO project_intents, buyer_intents FROM counted AS c;
    keys := ARRAY[p_buyer_province, project_province, project_category, project_exhibitor::text];
    IF p_hall IS NOT NULL THEN
        dimensions := dimensions || 'hall'::text;
        keys := keys || p_hall::text;
    END IF;
    -- A project or buyer counts in the totals from its first active intent.
    PERFORM fair_totals_move(project_fair, p_amount, 1, (project_intents = 1)::integer,
                             (buyer_intents = 1)::integer, dimensions, keys);
END
$$
"""


def _previous_sign_intent_function():
    """The fair_sign_intent this revision replaces (revision 0013's), read from that revision."""
    path = Path(__file__).with_name('0013_verify_organisations.py')
    spec = importlib.util.spec_from_file_location('revision_0013', path)
    previous = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(previous)
    return previous.SIGN_INTENT_FUNCTION


def upgrade():
    op.create_table('needs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fair_id', sa.Integer(), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description_source', sa.Text(), nullable=False),
    sa.Column('description_html', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=30), nullable=False),
    sa.Column('province', sa.String(length=5), nullable=False),
    sa.Column('city', sa.String(length=50), nullable=False),
    sa.Column('budget_min_fen', sa.BigInteger(), nullable=False),
    sa.Column('budget_max_fen', sa.BigInteger(), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('max_responses', sa.Integer(), nullable=False),
    sa.Column('response_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('status', sa.Enum('draft', 'open', 'closed', 'withdrawn', name='need_status', **ENUM), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closing_told_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('budget_min_fen > 0', name=op.f('ck_needs_positive_budget')),
    sa.CheckConstraint('budget_min_fen <= budget_max_fen', name=op.f('ck_needs_budget_in_order')),
    sa.CheckConstraint('max_responses > 0', name=op.f('ck_needs_wants_responses')),
    sa.CheckConstraint('response_count >= 0 AND response_count <= max_responses', name=op.f('ck_needs_responses_within_limit')),
    sa.ForeignKeyConstraint(['buyer_id'], ['users.id'], name=op.f('fk_needs_buyer_id_users')),
    sa.ForeignKeyConstraint(['fair_id'], ['fairs.id'], name=op.f('fk_needs_fair_id_fairs')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_needs_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_needs'))
    )
    op.create_index('ix_needs_fair_status', 'needs', ['fair_id', 'status', 'id'], unique=False)
    op.create_index(op.f('ix_needs_buyer_id'), 'needs', ['buyer_id'], unique=False)
    op.create_table('need_terms',
    sa.Column('need_id', sa.Integer(), nullable=False),
    sa.Column('term', sa.String(length=40).with_variant(sa.String(length=40, collation='C'), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['need_id'], ['needs.id'], name=op.f('fk_need_terms_need_id_needs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('need_id', 'term', name=op.f('pk_need_terms'))
    )
    op.create_index('ix_need_terms_term', 'need_terms', ['term', 'need_id'], unique=False)
    op.create_table('need_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('need_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('exhibitor_id', sa.Integer(), nullable=False),
    sa.Column('price_fen', sa.BigInteger(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('status', sa.Enum('submitted', 'shortlisted', 'declined', name='response_status', **ENUM), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('price_fen > 0', name=op.f('ck_need_responses_positive_price')),
    sa.ForeignKeyConstraint(['exhibitor_id'], ['exhibitors.id'], name=op.f('fk_need_responses_exhibitor_id_exhibitors')),
    sa.ForeignKeyConstraint(['need_id'], ['needs.id'], name=op.f('fk_need_responses_need_id_needs')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_need_responses_project_id_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_need_responses')),
    sa.UniqueConstraint('need_id', 'project_id', name='uq_need_responses_need_project')
    )
    op.create_index(op.f('ix_need_responses_need_id'), 'need_responses', ['need_id'], unique=False)
    op.create_index(op.f('ix_need_responses_exhibitor_id'), 'need_responses', ['exhibitor_id'], unique=False)
    op.create_table('need_matches',
    sa.Column('need_id', sa.Integer(), nullable=False),
    sa.Column('exhibitor_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['exhibitor_id'], ['exhibitors.id'], name=op.f('fk_need_matches_exhibitor_id_exhibitors')),
    sa.ForeignKeyConstraint(['need_id'], ['needs.id'], name=op.f('fk_need_matches_need_id_needs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_need_matches_project_id_projects')),
    sa.PrimaryKeyConstraint('need_id', 'exhibitor_id', name=op.f('pk_need_matches'))
    )
    op.create_index('ix_need_matches_exhibitor', 'need_matches', ['exhibitor_id', 'need_id'], unique=False)
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('link', sa.String(length=200), nullable=False),
    sa.Column('dedupe_key', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('emailed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('user_id', 'dedupe_key', name='uq_notifications_user_dedupe_key')
    )
    op.create_index('ix_notifications_user_unread', 'notifications', ['user_id', 'read_at', 'id'], unique=False)
    # Plain columns, no foreign keys: SQLite adds a foreign key only by rebuilding the table,
    # and intents is referenced by idempotency keys and payments (needs.service checks the ids).
    op.add_column('intents', sa.Column('need_id', sa.Integer(), nullable=True))
    op.add_column('intents', sa.Column('response_id', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_intents_need_id'), 'intents', ['need_id'], unique=False)
    op.create_index(op.f('ix_intents_response_id'), 'intents', ['response_id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION fair_sign_intent')
        op.execute(SIGN_INTENT_FUNCTION)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION fair_sign_intent')
        op.execute(_previous_sign_intent_function())
    op.drop_index(op.f('ix_intents_response_id'), table_name='intents')
    op.drop_index(op.f('ix_intents_need_id'), table_name='intents')
    op.drop_column('intents', 'response_id')
    op.drop_column('intents', 'need_id')
    op.drop_index('ix_notifications_user_unread', table_name='notifications')
    op.drop_table('notifications')
    op.drop_index('ix_need_matches_exhibitor', table_name='need_matches')
    op.drop_table('need_matches')
    op.drop_index(op.f('ix_need_responses_exhibitor_id'), table_name='need_responses')
    op.drop_index(op.f('ix_need_responses_need_id'), table_name='need_responses')
    op.drop_table('need_responses')
    op.drop_index('ix_need_terms_term', table_name='need_terms')
    op.drop_table('need_terms')
    op.drop_index(op.f('ix_needs_buyer_id'), table_name='needs')
    op.drop_index('ix_needs_fair_status', table_name='needs')
    op.drop_table('needs')
