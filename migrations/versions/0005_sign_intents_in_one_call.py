"""On PostgreSQL, sign an intent in one call (fair_sign_intent); move the totals without
building the broadcast inside the lock (fair_totals_move returns nothing now, and breakdown rows
no longer carry the seq of their last change).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 11:20:00.000000

"""
import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# PostgreSQL only. The totals are no longer returned to the writer (viewers' totals are read
# after the commit), so moving them is the UPDATE and the UPSERT alone. deals/totals.py runs
# the same statements one by one on SQLite; the two must change together.
MOVE_TOTALS_FUNCTION = """
CREATE FUNCTION fair_totals_move(
    p_fair integer, p_amount bigint, p_deals integer, p_projects integer, p_buyers integer,
    p_dimensions text[], p_keys text[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE fair_totals AS t
       SET seq = t.seq + 1, amount_fen = t.amount_fen + p_amount,
           deal_count = t.deal_count + p_deals, project_count = t.project_count + p_projects,
           buyer_count = t.buyer_count + p_buyers
     WHERE t.fair_id = p_fair;
    IF NOT FOUND THEN
        INSERT INTO fair_totals (fair_id, seq, amount_fen, deal_count, project_count, buyer_count)
        VALUES (p_fair, 0, 0, 0, 0, 0) ON CONFLICT (fair_id) DO NOTHING;
        UPDATE fair_totals AS t
           SET seq = t.seq + 1, amount_fen = t.amount_fen + p_amount,
               deal_count = t.deal_count + p_deals, project_count = t.project_count + p_projects,
               buyer_count = t.buyer_count + p_buyers
         WHERE t.fair_id = p_fair;
    END IF;
    IF p_deals > 0 THEN
        INSERT INTO fair_totals_breakdown AS b (fair_id, dimension, key, amount_fen, deal_count)
        SELECT p_fair, u.dimension, u.key, p_amount, 1
          FROM unnest(p_dimensions, p_keys) AS u (dimension, key)
        ON CONFLICT (fair_id, dimension, key) DO UPDATE
           SET amount_fen = b.amount_fen + excluded.amount_fen, deal_count = b.deal_count + 1;
    ELSE
        UPDATE fair_totals_breakdown AS b
           SET amount_fen = b.amount_fen + p_amount, deal_count = b.deal_count - 1
          FROM unnest(p_dimensions, p_keys) AS u (dimension, key)
         WHERE b.fair_id = p_fair AND b.dimension = u.dimension AND b.key = u.key;
    END IF;
END
$$
"""

# What deals/totals.py's write_intent does on SQLite statement by statement (insert the intent,
# insert its idempotency key, read the fair's status, count the project and buyer, move the
# totals), as one call, so that signing costs one round trip instead of five. When the fair is
# not open it stops before the totals and says so; the caller refuses and rolls back.
SIGN_INTENT_FUNCTION = """
CREATE FUNCTION fair_sign_intent(
    p_fair integer, p_project integer, p_buyer integer, p_buyer_organisation integer,
    p_buyer_province text, p_exhibitor integer, p_exhibitor_province text, p_category text,
    p_hall integer, p_amount bigint, p_note text, p_status text, p_created_at timestamptz,
    p_key text, p_fingerprint text, p_dimensions text[], p_keys text[],
    OUT intent_id integer, OUT fair_status text
) LANGUAGE plpgsql AS $$
DECLARE
    project_intents integer;
    buyer_intents integer;
BEGIN
    INSERT INTO intents (fair_id, project_id, buyer_id, buyer_organisation_id, buyer_province,
                         exhibitor_id, exhibitor_province, category, hall_id, amount_fen, note,
                         status, created_at, secured)
    VALUES (p_fair, p_project, p_buyer, p_buyer_organisation, p_buyer_province, p_exhibitor,
            p_exhibitor_province, p_category, p_hall, p_amount, p_note, p_status, p_created_at,
            false)
    RETURNING id INTO intent_id;
    INSERT INTO idempotency_keys (buyer_id, key, fingerprint, intent_id)
    VALUES (p_buyer, p_key, p_fingerprint, intent_id);
    SELECT f.status INTO fair_status FROM fairs AS f WHERE f.id = p_fair;
    IF fair_status IS DISTINCT FROM 'open' THEN
        RETURN;
    END IF;
    WITH counted AS (
        INSERT INTO fair_totals_members AS m (fair_id, member, member_id, intent_count)
        VALUES (p_fair, 'project', p_project, 1), (p_fair, 'buyer', p_buyer, 1)
        ON CONFLICT (fair_id, member, member_id)
        DO UPDATE SET intent_count = m.intent_count + 1
        RETURNING m.member, m.intent_count)
    SELECT max(c.intent_count) FILTER (WHERE c.member = 'project'),
           max(c.intent_count) FILTER (WHERE c.member = 'buyer')
      INTO project_intents, buyer_intents FROM counted AS c;
    -- A project or buyer counts in the totals from its first active intent.
    PERFORM fair_totals_move(p_fair, p_amount, 1, (project_intents = 1)::integer,
                             (buyer_intents = 1)::integer, p_dimensions, p_keys);
END
$$
"""



def _revision_0002_move_totals_function():
    """Revision 0002's fair_totals_move (it returned the totals), read from that revision."""
    path = Path(__file__).with_name('0002_create_intents_and_totals.py')
    spec = importlib.util.spec_from_file_location('revision_0002', path)
    revision_0002 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(revision_0002)
    return revision_0002.MOVE_TOTALS_FUNCTION


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION fair_totals_move')
    with op.batch_alter_table('fair_totals_breakdown', schema=None) as batch_op:
        batch_op.drop_column('seq')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(MOVE_TOTALS_FUNCTION)
        op.execute(SIGN_INTENT_FUNCTION)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION fair_sign_intent')
        op.execute('DROP FUNCTION fair_totals_move')
    with op.batch_alter_table('fair_totals_breakdown', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), server_default='0', nullable=False))
    with op.batch_alter_table('fair_totals_breakdown', schema=None) as batch_op:
        batch_op.alter_column('seq', server_default=None)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_revision_0002_move_totals_function())
