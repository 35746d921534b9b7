"""On PostgreSQL, sign an intent as one statement that is its own transaction: fair_sign_intent
reads the project itself and refuses what may not be signed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 13:10:00.000000

"""
import importlib.util
from pathlib import Path

from alembic import op


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# deals/signing.py's write_intent runs this call in autocommit: BEGIN, the call and COMMIT were
# three round trips, and the application loaded the project first (a fourth). So the function
# reads what the intent copies from its project, and refuses, raising SQLSTATE FA001 with the
# reason as the message, which rolls the statement back: 'no_project', 'hall_not_in_fair'
# (checked before anything is written), then, after the intent and its key are written (so
# that a retry of an earlier request meets that request's key and answers its intent),
# 'project_not_published' and 'fair_not_open' (deals.signing.REFUSALS). The breakdown keys are
# deals.totals' BREAKDOWN. This function is kept for speed; deals/signing.py runs the same
# steps one by one on SQLite, and tests/integration/test_signing_paths.py runs both and fails
# when they differ in an answer or a row.
SIGN_INTENT_FUNCTION = """
CREATE FUNCTION fair_sign_intent(
    p_project integer, p_buyer integer, p_buyer_organisation integer, p_buyer_province text,
    p_hall integer, p_amount bigint, p_note text, p_created_at timestamptz, p_key text,
    p_fingerprint text,
    OUT intent_id integer, OUT project_fair integer, OUT project_exhibitor integer,
    OUT project_province text, OUT project_category text, OUT project_title text
) LANGUAGE plpgsql AS $$
DECLARE
    project_status text;
    fair_status text;
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
    INSERT INTO intents (fair_id, project_id, buyer_id, buyer_organisation_id, buyer_province,
                         exhibitor_id, exhibitor_province, category, hall_id, amount_fen, note,
                         status, created_at, secured)
    VALUES (project_fair, p_project, p_buyer, p_buyer_organisation, p_buyer_province,
            project_exhibitor, project_province, project_category, p_hall, p_amount, p_note,
            'active', p_created_at, false)
    RETURNING id INTO intent_id;
    INSERT INTO idempotency_keys (buyer_id, key, fingerprint, intent_id)
    VALUES (p_buyer, p_key, p_fingerprint, intent_id);
    IF project_status IS DISTINCT FROM 'published' THEN
        RAISE EXCEPTION 'project_not_published' USING ERRCODE = 'FA001';
    END IF;
    SELECT f.status INTO fair_status FROM fairs AS f WHERE f.id = project_fair;
    IF fair_status IS DISTINCT FROM 'open' THEN
        RAISE EXCEPTION 'fair_not_open' USING ERRCODE = 'FA001';
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


def _revision_0005_sign_intent_function():
    """Revision 0005's fair_sign_intent, read from that revision."""
    path = Path(__file__).with_name('0005_sign_intents_in_one_call.py')
    spec = importlib.util.spec_from_file_location('revision_0005', path)
    revision_0005 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(revision_0005)
    return revision_0005.SIGN_INTENT_FUNCTION


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION fair_sign_intent')
        op.execute(SIGN_INTENT_FUNCTION)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION fair_sign_intent')
        op.execute(_revision_0005_sign_intent_function())
