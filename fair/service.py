"""Fair use cases: create, change, move through draft, open and closed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from fair import permissions
from fair.accounts.models import User
from fair.database import as_utc, use_case
from fair.errors import Conflict, InvalidInput, NotFound
from fair.extensions import db
from fair.models import Fair, FairStatus

#: The moves a fair may make; a closed fair may be reopened, never sent back to draft.
TRANSITIONS: dict[FairStatus, frozenset[FairStatus]] = {
    FairStatus.draft: frozenset({FairStatus.open}),
    FairStatus.open: frozenset({FairStatus.closed}),
    FairStatus.closed: frozenset({FairStatus.open}),
}


#: Each state of a fair as people read it.
STATUS_NAMES = {FairStatus.draft: _l("筹备中"), FairStatus.open: _l("进行中"),
                FairStatus.closed: _l("已闭幕")}


def access_fair(fair_id: int) -> Fair:
    fair = db.session.get(Fair, fair_id)
    if fair is None:
        raise NotFound(_l("没有这届大会。"))
    return fair


def list_fairs() -> Sequence[Fair]:
    return db.session.scalars(select(Fair).order_by(Fair.starts_at.desc(), Fair.id)).all()


def current_fair() -> Fair | None:
    """The fair the home page shows: the latest open one, else the latest of any."""
    open_fair = db.session.scalar(
        select(Fair).where(Fair.status == FairStatus.open).order_by(Fair.starts_at.desc())
    )
    return open_fair or db.session.scalar(select(Fair).order_by(Fair.id.desc()))


def access_current_fair() -> Fair:
    """The current fair, for pages that make no sense without one."""
    fair = current_fair()
    if fair is None:
        raise NotFound(_l("尚未创建采购大会。"))
    return fair


def in_utc(moment: dt.datetime) -> dt.datetime:
    """The same moment in UTC: SQLite keeps no offset, so everything is stored as UTC."""
    return moment.astimezone(dt.UTC)


@use_case()
def create_fair(*, organiser: User | None, name: str, starts_at: dt.datetime,
                ends_at: dt.datetime) -> Fair:
    """Create a fair in draft."""
    permissions.require_organiser(organiser)
    if ends_at <= starts_at:
        raise InvalidInput(fields={"ends_at": [_l("闭幕时间必须晚于开幕时间。")]})
    fair = Fair(name=name.strip(), starts_at=in_utc(starts_at), ends_at=in_utc(ends_at),
                status=FairStatus.draft)
    db.session.add(fair)
    return fair


@use_case()
def update_fair(fair: Fair, *, organiser: User | None, changes: dict[str, Any]) -> Fair:
    """Rename, reschedule, set the booth fee, the deposit and the ceiling of one intent, or move
    a fair to another status."""
    permissions.require_organiser(organiser)
    status = changes.pop("status", None)
    if status is not None and status is not fair.status:
        if status not in TRANSITIONS[fair.status]:
            raise Conflict(
                _l("“%(current)s”的大会不能改为“%(wanted)s”。",
                   current=STATUS_NAMES[fair.status], wanted=STATUS_NAMES[status]),
                code="bad_transition",
            )
        fair.status = status
    if "name" in changes:
        fair.name = changes["name"]
    for name in ("starts_at", "ends_at"):
        if name in changes:
            setattr(fair, name, in_utc(changes[name]))
    for name in ("booth_fee_fen", "deposit_percent", "booth_fee_required", "max_intent_fen"):
        if name in changes:
            setattr(fair, name, changes[name])
    if as_utc(fair.ends_at) <= as_utc(fair.starts_at):
        raise InvalidInput(fields={"ends_at": [_l("闭幕时间必须晚于开幕时间。")]})
    return fair
