"""Buyer organisations are verified by an organiser before their intents count in the totals;
a fair may set a ceiling on one intent.

Revision ID: 0013_verify_organisations
Revises: 0012_english_text
Create Date: 2026-12-02 18:35:00.000000

"""
import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_verify_organisations'
down_revision = '0012_english_text'
branch_labels = None
depends_on = None

# fair_sign_intent as in revision 0006, and: the amount is refused above the fair's ceiling
# (fairs.max_intent_fen, when set), after the intent and its key are written as the fair's
# other refusals are ('amount_over_ceiling'); the buyer's organisation row is read FOR SHARE
# before the intent is written, so that a verification (which updates that row, then counts
# the organisation's intents) either finished before and is seen, or waits for this signing and
# then counts its intent. An intent of an unverified organisation is written with its key, with
# counted = false, and stops before the totals. deals/signing.py's _write_step_by_step does
# the same on SQLite; tests/integration/test_signing_paths.py runs both and compares the rows.
SIGN_INTENT_FUNCTION = """
CREATE FUNCTION fair_sign_intent(
    p_project integer, p_buyer integer, p_buyer_organisation integer, p_buyer_province text,
    p_hall integer, p_amount bigint, p_note text, p_created_at timestamptz, p_key text,
    p_fingerprint text,
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
                         status, created_at, secured, counted)
    VALUES (project_fair, p_project, p_buyer, p_buyer_organisation, p_buyer_province,
            project_exhibitor, project_province, project_category, p_hall, p_amount, p_note,
            'active', p_created_at, false, intent_counted)
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


def _revision_0006_sign_intent_function():
    """Revision 0006's fair_sign_intent, read from that revision."""
    path = Path(__file__).with_name('0006_sign_intents_as_one_statement.py')
    spec = importlib.util.spec_from_file_location('revision_0006', path)
    revision_0006 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(revision_0006)
    return revision_0006.SIGN_INTENT_FUNCTION


def upgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        # Batch mode copies `organisations` and `fairs` and drops the originals; with foreign
        # keys enforced those drops fail as soon as a row refers to them.
        op.execute('PRAGMA foreign_keys=OFF')
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('verified_by', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_organisations_verified_by_users'), 'users', ['verified_by'], ['id'], ondelete='SET NULL')
    # The organisations already here signed intents that already count: they stay counted, as
    # verified before verification existed (by nobody).
    op.execute('UPDATE organisations SET verified_at = CURRENT_TIMESTAMP')
    with op.batch_alter_table('intents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('counted', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.create_index(batch_op.f('ix_intents_buyer_organisation_id'), ['buyer_organisation_id'], unique=False)
    with op.batch_alter_table('fairs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_intent_fen', sa.BigInteger(), nullable=True))
        batch_op.create_check_constraint(batch_op.f('ck_fairs_max_intent_range'), 'max_intent_fen > 0 AND max_intent_fen <= 10000000000')
    if sqlite:
        op.execute('PRAGMA foreign_keys=ON')
    if op.get_bind().dialect.name == 'postgresql':
        # Its result gains a column, which CREATE OR REPLACE cannot do.
        op.execute('DROP FUNCTION fair_sign_intent')
        op.execute(SIGN_INTENT_FUNCTION)


def downgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if not sqlite:
        op.execute('DROP FUNCTION fair_sign_intent')
        op.execute(_revision_0006_sign_intent_function())
    else:
        op.execute('PRAGMA foreign_keys=OFF')
    with op.batch_alter_table('fairs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_fairs_max_intent_range'), type_='check')
        batch_op.drop_column('max_intent_fen')
    with op.batch_alter_table('intents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intents_buyer_organisation_id'))
        batch_op.drop_column('counted')
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_organisations_verified_by_users'), type_='foreignkey')
        batch_op.drop_column('verified_by')
        batch_op.drop_column('verified_at')
    if sqlite:
        op.execute('PRAGMA foreign_keys=ON')
