"""Live-hall use cases: who may watch what, and the halls of a fair."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from fair import permissions
from fair import service as fair_service
from fair.accounts.models import User
from fair.extensions import db
from fair.models import Fair
from livehalls.models import Hall


def access_dashboard(user: User | None, fair_id: int) -> Fair:
    """The fair whose dashboard an organiser opens."""
    permissions.require_organiser(user)
    return fair_service.access_fair(fair_id)


def list_halls(fair: Fair) -> Sequence[Hall]:
    return db.session.scalars(select(Hall).where(Hall.fair_id == fair.id).order_by(Hall.id)).all()
