"""Socket.IO handlers of the /live namespace, registered by `register(socketio)`."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

import flask_socketio
from flask import request, session
from flask_babel import lazy_gettext as _l
from flask_socketio import SocketIO, join_room, leave_room
from marshmallow import ValidationError
from socketio.exceptions import ConnectionRefusedError as ConnectionRefused

from fair import auth, guard, signals
from fair.accounts import service as account_service
from fair.accounts.models import User
from fair.errors import FairError, Forbidden, InvalidInput, Unauthorized
from livehalls import broadcast, presence, rooms, service
from livehalls.schemas import (
    ChatInputSchema,
    ConnectAuthSchema,
    HallSummarySchema,
    JoinDashboardSchema,
    JoinHallSchema,
    LeaveHallSchema,
)

logger = logging.getLogger(__name__)

#: Where a connection keeps the user it authenticated as: in Flask-SocketIO's per-connection
#: copy of the session, which never goes back into the browser's cookie.
VIEWER_KEY = "live_user_id"
#: ...and the token it proved that with (a bearer token, or the session cookie's own), checked
#: again before every event: a revoked token or an ended session ends the connection.
CREDENTIAL_KEY = "live_token"
#: ...and who it counts as in the viewer figures (livehalls.presence): the user, else the
#: visitor of the first-party cookie, else the client's address.
PERSON_KEY = "live_viewer"
#: The audience's visitor cookie (audience.recording.VISITOR_COOKIE): 32 hex digits.
VISITOR_COOKIE = "fair_visitor"
_VISITOR = re.compile(r"[0-9a-f]{32}")

Ack = dict[str, Any]


def connect(credentials: Any = None) -> None:
    """A client opens /live: `auth: {token}` (a bearer token) or the session cookie says who
    it is; with neither it watches anonymously. A signed-in client hears `unread`.

    A token that is unknown or revoked is refused rather than treated as anonymous, so that a
    client never silently loses its rights.
    """
    try:
        user, token = _authenticate(credentials)
    except FairError as error:
        raise ConnectionRefused(error.to_dict()) from error
    except Exception as error:
        # Flask-SocketIO calls a connect handler that raised TypeError again *without* its auth
        # argument: nothing may escape from here, or a failed check would return as anonymous.
        logger.exception("A /live connection failed to authenticate.")
        raise ConnectionRefused({"code": "error", "message": _l("无法连接。")}) from error
    session[VIEWER_KEY] = None if user is None else user.id
    session[CREDENTIAL_KEY] = token
    session[PERSON_KEY] = _person(user)
    if user is not None:
        # A signed-in socket hears its own user's news (the unread count), and no other's: the
        # room is joined here, from the credentials just checked, never on a client's asking.
        join_room(rooms.user_room(user.id))
        broadcast.watch_unread(user.id)


def _person(user: User | None) -> str:
    """Who a connection counts as among a hall's viewers: one person's tabs and reconnects
    (and a script's thirty sockets from one client) are one viewer."""
    if user is not None:
        return f"user:{user.id}"
    visitor = request.cookies.get(VISITOR_COOKIE, "")
    if _VISITOR.fullmatch(visitor):
        return f"visitor:{visitor}"
    return f"address:{request.remote_addr}"


def join_dashboard(data: Any) -> Ack:
    """An organiser's dashboard opens a fair: `{fair_id}` -> `{ok, totals, deals, halls,
    viewers}`, `deals` being the newest intents, oldest first.

    From then on the client hears the fair's `deals`, `secured`, `totals` and `seq`, and every
    hall's `viewers`, in the dashboard room.
    """
    fair_id = JoinDashboardSchema().load(data)["fair_id"]
    fair = service.access_dashboard(current_viewer(), fair_id)
    # Join before reading the totals: a change in between then arrives as a newer `totals`
    # message, never in a gap the client cannot see.
    join_room(rooms.dashboard_room(fair.id))
    presence.current().watch_dashboard(request.sid)
    halls = service.list_halls(fair)
    totals, deals = broadcast.snapshot(fair.id, hall=False)
    return {
        "ok": True,
        "totals": totals,
        "deals": deals,
        "halls": HallSummarySchema(many=True).dump(halls),
        # Each hall's viewer figures, as its `viewers` messages will bring them from now on.
        "viewers": [presence.current().viewers_message(hall.id, hall.fair_id) for hall in halls],
    }


def join_hall(data: Any) -> Ack:
    """Anyone opens a hall, signed in or not: `{hall_id}` -> `{ok, hall, totals, deals, chat}`,
    the totals as hall rooms get them and `deals` the newest intents, oldest first.

    The connection then hears the hall's `chat`, `chat_hidden`, `on_air` and `viewers`, and its
    fair's `deals`, `secured`, `totals` and `seq`. A client joins again after every reconnect:
    the acknowledgement is a fresh snapshot, and it counts as a new visit only if its viewer
    (the user, or the visitor) was not in the hall within presence.VISIT_WINDOW.
    """
    hall_id = JoinHallSchema().load(data)["hall_id"]
    # Rooms first, snapshot second: whatever changes in between arrives as a newer message.
    join_room(rooms.hall_room(hall_id))
    try:
        snapshot = service.hall_snapshot(hall_id)
    except FairError:
        leave_room(rooms.hall_room(hall_id))
        raise
    join_room(rooms.fair_room(snapshot.fair_id))
    audience = presence.current()
    if audience.join(request.sid, hall_id=hall_id, fair_id=snapshot.fair_id,
                     viewer=session.get(PERSON_KEY)):
        signals.hall_visited.send(None, fair_id=snapshot.fair_id, hall_id=hall_id,
                                  showcase_id=snapshot.on_air_id)
    hall_figures, fair_figures = audience.figures(hall_id, snapshot.fair_id, recent=True)
    totals, deals = broadcast.snapshot(snapshot.fair_id, hall=True)
    return {
        "ok": True,
        "hall": {**snapshot.payload, **hall_figures.as_payload(),
                 "fair": fair_figures.as_payload()},
        "totals": totals,
        "deals": deals,
        "chat": snapshot.chat,
    }


def leave_hall(data: Any) -> Ack:
    """A viewer leaves a hall: `{hall_id}`; it stops hearing the hall and stops being counted.

    It keeps hearing the fair's deals and totals while it still watches another of its halls.
    """
    hall = service.access_hall(LeaveHallSchema().load(data)["hall_id"])
    audience = presence.current()
    audience.leave(request.sid, hall_id=hall.id)
    leave_room(rooms.hall_room(hall.id))
    if hall.fair_id not in audience.halls_of(request.sid).values():
        leave_room(rooms.fair_room(hall.fair_id))
    return {"ok": True}


def chat(data: Any) -> Ack:
    """A signed-in viewer says something: `{hall_id, text}` -> `{ok}`; the hall hears `chat`.

    Anonymous viewers, empty or overlong lines and users posting too fast are refused with
    `{ok: false, error}`.
    """
    payload = ChatInputSchema().load(data)
    hall = service.access_hall(payload["hall_id"])
    if hall.id not in presence.current().halls_of(request.sid):
        raise Forbidden(_l("请先进入直播厅再发言。"), code="not_in_hall")
    service.post_chat(hall, user=current_viewer(), text=payload["text"])
    return {"ok": True}


def disconnect(reason: Any = None) -> None:
    """The connection closed: a goodbye, or Engine.IO's ping timeout for a vanished client."""
    presence.current().disconnect(request.sid)


#: Every client-to-server event of /live and its handler. Each is named for its event: it loads
#: the payload with a schema, calls a service, joins rooms and returns the acknowledgement; a
#: failure becomes `{ok: false, error: {code, message, fields}}` in `handle_error`. Handlers never
#: emit to rooms: server-originated events (deals, totals, viewers...) leave through
#: livehalls.broadcast only, which also reads the fair's totals and newest intents for the
#: acknowledgements.
HANDLERS: dict[str, Callable[..., Any]] = {
    "connect": connect,
    "disconnect": disconnect,
    "join_dashboard": join_dashboard,
    "join_hall": join_hall,
    "leave_hall": leave_hall,
    "chat": chat,
}


def register(socketio: SocketIO) -> None:
    """Register the /live handlers once; each later `socketio.init_app` replays them."""
    if any(namespace == rooms.NAMESPACE for _, _, namespace in socketio.handlers):
        return
    for name, handler in HANDLERS.items():
        socketio.on_event(name, handler if name in LIFECYCLE else _guarded(handler),
                          namespace=rooms.NAMESPACE)
    socketio.on_error(rooms.NAMESPACE)(handle_error)


#: Events of the connection itself rather than of a client's message.
LIFECYCLE = frozenset({"connect", "disconnect"})


def _guarded(handler: Callable[[Any], Ack]) -> Callable[[Any], Ack]:
    """Refuse a message carrying text that cannot be stored before its handler sees it."""

    @functools.wraps(handler)
    def guarded(data: Any = None) -> Ack:
        _check_credential()
        guard.check_text(data)
        return handler(data)

    return guarded


def handle_error(error: Exception) -> Ack:
    """Answer a failed event in the fair's one error shape, as its acknowledgement."""
    if isinstance(error, ValidationError):
        error = InvalidInput(fields=error.normalized_messages())
    if not isinstance(error, FairError):
        logger.error("A /live event failed.", exc_info=error)
        error = FairError(_l("服务器出错，未做任何更改。"), code="error")
    return {"ok": False, "error": error.to_dict()}


def current_viewer() -> User | None:
    """The user this connection authenticated as, or None for an anonymous viewer."""
    user_id = session.get(VIEWER_KEY)
    return None if user_id is None else account_service.get_user(user_id)


def _check_credential() -> None:
    """Refuse the event, and end the connection, once its token is revoked or its session
    signed out."""
    token = session.get(CREDENTIAL_KEY)
    if token is not None and account_service.user_for_token(token) is None:
        session[VIEWER_KEY] = session[CREDENTIAL_KEY] = None
        flask_socketio.disconnect()
        raise Unauthorized(_l("令牌已被撤销或会话已结束。"), code="bad_token")


def _authenticate(credentials: Any) -> tuple[User | None, str | None]:
    """The user and the token that proves it (a bearer token or the session's), or Nones."""
    try:
        token = ConnectAuthSchema().load(credentials or {})["token"]
    except ValidationError as error:
        raise InvalidInput(fields=error.normalized_messages()) from error
    if token is not None:
        user = account_service.user_for_token(token)
        if user is None:
            raise Unauthorized(_l("令牌无效或已被撤销。"), code="bad_token")
        return user, token
    user = auth.session_user()
    return user, None if user is None else session.get(auth.SESSION_TOKEN_KEY)
