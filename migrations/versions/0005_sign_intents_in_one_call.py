"""On PostgreSQL, sign an intent in one call: fair_sign_intent.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 11:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# PostgreSQL only: what deals/totals.py's write_intent does on SQLite statement by statement
# (insert the intent, insert its idempotency key, read the fair's status, count the project
# and buyer, move the totals with fair_totals_move), as one call, so that signing costs one
# round trip instead of five. When the fair is not open it stops before the totals and says
# so; the caller refuses and rolls back. The two must change together.
SIGN_INTENT_FUNCTION = """
CREATE FUNCTION fair_sign_intent(
    p_fair integer, p_project integer, p_buyer integer, p_buyer_organisation integer,
    p_buyer_province text, p_exhibitor integer, p_exhibitor_province text, p_category text,
    p_hall integer, p_amount bigint, p_note text, p_status text, p_created_at timestamptz,
    p_key text, p_fingerprint text, p_dimensions text[], p_keys text[], p_since bigint
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    new_intent integer;
    status_now text;
    project_intents integer;
    buyer_intents integer;
BEGIN
    INSERT INTO intents (fair_id, project_id, buyer_id, buyer_organisation_id, buyer_province,
                         exhibitor_id, exhibitor_province, category, hall_id, amount_fen, note,
                         status, created_at, secured)
    VALUES (p_fair, p_project, p_buyer, p_buyer_organisation, p_buyer_province, p_exhibitor,
            p_exhibitor_province, p_category, p_hall, p_amount, p_note, p_status, p_created_at,
            false)
    RETURNING id INTO new_intent;
    INSERT INTO idempotency_keys (buyer_id, key, fingerprint, intent_id)
    VALUES (p_buyer, p_key, p_fingerprint, new_intent);
    SELECT f.status INTO status_now FROM fairs AS f WHERE f.id = p_fair;
    IF status_now IS DISTINCT FROM 'open' THEN
        RETURN jsonb_build_object('intent', new_intent, 'fair_status', status_now);
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
    RETURN fair_totals_move(p_fair, p_amount, 1, (project_intents = 1)::integer,
                            (buyer_intents = 1)::integer, p_dimensions, p_keys, p_since)
           || jsonb_build_object('intent', new_intent, 'fair_status', status_now);
END
$$
"""


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(SIGN_INTENT_FUNCTION)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION fair_sign_intent')
