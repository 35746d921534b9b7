"""The intents viewers see in the ticker (a fair's newest, or those after one), as
livehalls.schemas.DealEventSchema dumps them: livehalls reads them through ``read_deals``."""

from __future__ import annotations

from sqlalchemy import select

from deals.models import Intent, IntentStatus
from exhibitors.models import Project
from fair.extensions import db
from livehalls.broadcast import Deal
from livehalls.schemas import DealEventSchema

_DEAL_EVENT = DealEventSchema()
# The columns a ticker entry shows, not the intent with everything it loads.
_ACTIVE = (
    select(Intent.id, Intent.hall_id, Intent.buyer_province, Intent.amount_fen,
           Intent.created_at, Intent.secured, Project.id.label("project_id"), Project.title)
    .join(Project, Project.id == Intent.project_id)
    .where(Intent.status == IntentStatus.active, Intent.counted)
)


def read_deals(fair_id: int, *, after: int | None, limit: int) -> list[Deal]:
    """The fair's active intents that count (their buyers' organisations are verified), oldest
    first: the `limit` newest (`after` None), or the `limit`
    oldest with an id above `after`."""
    query = _ACTIVE.where(Intent.fair_id == fair_id)
    if after is None:
        rows = list(reversed(db.session.execute(
            query.order_by(Intent.id.desc()).limit(limit)).all()))
    else:
        rows = list(db.session.execute(
            query.where(Intent.id > after).order_by(Intent.id).limit(limit)).all())
    return [_DEAL_EVENT.dump({
        "id": row.id, "hall_id": row.hall_id, "buyer_province": row.buyer_province,
        "amount_fen": row.amount_fen, "created_at": row.created_at, "secured": row.secured,
        "project": {"id": row.project_id, "title": row.title},
    }) for row in rows]
