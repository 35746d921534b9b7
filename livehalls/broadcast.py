"""The one server-to-client emitter: events queue on the session and leave after commit.

Written by the deals helper as the minimal version of the contract, for the realtime helper
to replace wholesale (rooms from livehalls.rooms, the per-fair coalescer): keep the
signatures of deal_recorded, totals_changed and init_app, which deals.service calls.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from fair.extensions import db, socketio

NAMESPACE = "/live"
QUEUE_KEY = "fair.broadcasts"

Payload = dict[str, Any]


def deal_recorded(fair_id: int, *, deal: Payload, totals: Payload) -> None:
    """A new intent was signed in the fair: tell its rooms once the transaction commits."""
    _queue(fair_id, "deals", {"fair_id": fair_id, "deals": [deal]})
    _queue(fair_id, "totals", totals)


def totals_changed(fair_id: int, *, totals: Payload) -> None:
    """The fair's totals moved without a new intent (a withdrawal)."""
    _queue(fair_id, "totals", totals)


def _queue(fair_id: int, name: str, payload: Payload) -> None:
    db.session.info.setdefault(QUEUE_KEY, []).append((fair_id, name, payload))


def _fair_room(fair_id: int) -> str:
    return f"fair:{fair_id}"


def _emit_queued(session: Session) -> None:
    # No SQL here: the session is between transactions (SQLAlchemy's after_commit note).
    for fair_id, name, payload in session.info.pop(QUEUE_KEY, []):
        socketio.emit(name, payload, to=_fair_room(fair_id), namespace=NAMESPACE)


def _drop_queued(session: Session) -> None:
    session.info.pop(QUEUE_KEY, None)


def init_app(app: Flask) -> None:
    """Hook the session so that queued events go out after commit and vanish on rollback."""
    for name, listener in (("after_commit", _emit_queued), ("after_rollback", _drop_queued)):
        if not event.contains(db.session, name, listener):
            event.listen(db.session, name, listener)
