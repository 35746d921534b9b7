"""How the server records what it sees: who the visitor is (a first-party cookie, or nobody
under Do-Not-Track / Global Privacy Control), and each process's buffer of events, written in
batches through audience.service.write_events at least every AUDIENCE_FLUSH_SECONDS."""

from __future__ import annotations

import atexit
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, g, has_request_context, request
from flask.wrappers import Response

from audience import service
from audience.models import Kind
from fair import service as fair_service
from fair import signals
from fair.accounts.models import User
from fair.auth import current_user
from fair.database import after_commit

logger = logging.getLogger(__name__)

#: The first-party visitor id: a random value, nothing derived from the browser.
VISITOR_COOKIE = "fair_visitor"
VISITOR_MAX_AGE = 365 * 24 * 3600
EXTENSION_KEY = "fair.audience"
#: A buffer holding this many events writes them at once, without waiting for the clock.
FLUSH_AT = 2_000


# --- Who is doing it -----------------------------------------------------------------------


def tracking_refused() -> bool:
    """The browser asked not to be tracked (DNT: 1) or sent Global Privacy Control."""
    return request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1"


def visitor_id() -> str:
    """This browser's visitor id: the cookie's, or a new one the response will set."""
    if "fair_visitor" not in g:
        sent = request.cookies.get(VISITOR_COOKIE, "")
        valid = len(sent) == 32 and all(c in "0123456789abcdef" for c in sent)
        g.fair_visitor = sent if valid else secrets.token_hex(16)
        g.fair_visitor_new = not valid
    visitor: str = g.fair_visitor
    return visitor


def current_actor() -> service.Actor:
    """Who this request acts for: the signed-in user, else the visitor of the cookie."""
    return service.Actor.of(current_user(), visitor_id())


def recording_actor() -> service.Actor | None:
    """Who to record this request's doings for; None when the browser refused tracking."""
    if not has_request_context() or tracking_refused():
        return None
    return current_actor()


def _forget_visitor() -> None:
    # The app context (and g) can outlive a request, as under the test client.
    for name in ("fair_visitor", "fair_visitor_new", "fair_visitor_used"):
        g.pop(name, None)


def _set_visitor_cookie(response: Response) -> Response:
    # Set only when something used the id (a favourite, a recorded event), never under DNT
    # or GPC unless the visitor kept a favourite, which needs it.
    if g.get("fair_visitor_new") and g.get("fair_visitor_used"):
        response.set_cookie(VISITOR_COOKIE, g.fair_visitor, max_age=VISITOR_MAX_AGE,
                            httponly=True, samesite="Lax",
                            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


def use_visitor() -> None:
    """The visitor id is part of what this request keeps: the response sets the cookie."""
    visitor_id()
    g.fair_visitor_used = True


# --- The buffer ----------------------------------------------------------------------------


class Buffer:
    """The events this process has seen and not yet written. A crash loses them: at most
    AUDIENCE_FLUSH_SECONDS of views, searches, visits and beacon events (favourites, shares and
    intents are state, written in their own transactions)."""

    def __init__(self, app: Flask, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self._rows: list[service.EventRow] = []
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def add(self, rows: list[service.EventRow]) -> None:
        if not rows:
            return
        with self._lock:
            self._rows.extend(rows)
            full = len(self._rows) >= FLUSH_AT
        if self.seconds <= 0 or full:
            self.flush()
        else:
            self._start()

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def flush(self) -> int:
        """Write what waits, as one batch in a transaction (and app context) of its own."""
        with self._writing:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            with self.app.app_context():
                try:
                    return service.write_events(rows)
                except Exception:
                    logger.exception("Writing %d audience events failed; they are lost.",
                                     len(rows))
                    return 0

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="audience-buffer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            time.sleep(self.seconds)
            self.flush()

    def stop(self) -> None:
        self._stopped = True
        self.flush()


def buffer(app: Flask | None = None) -> Buffer:
    found: Buffer = (app or current_app).extensions[EXTENSION_KEY]
    return found


def record(row: service.EventRow) -> None:
    """Hand an event to this process's buffer."""
    buffer().add([row])


def record_many(rows: list[service.EventRow]) -> None:
    buffer().add(rows)


def record_intent(*, fair_id: int, buyer: User, project_id: int, category: str | None,
                  hall_id: int | None) -> None:
    """An intent signed: recorded once the signing commits (its hall's showcase on air is
    read when the batch is written). Under DNT or GPC only the intent itself remains."""
    if has_request_context() and tracking_refused():
        return
    visitor = visitor_id() if has_request_context() else None
    row = service.event_row(Kind.intent, fair_id=fair_id, actor=service.Actor.of(buyer, visitor),
                            project_id=project_id, hall_id=hall_id, category=category)
    after_commit(lambda: record(row))


# --- What the packages tell us (fair.signals) ---------------------------------------------


def _project_viewed(sender: object, *, project: Any, **_: object) -> None:
    actor = recording_actor()
    if actor is None or not project.is_published:
        return
    use_visitor()
    record(service.event_row(Kind.view, fair_id=project.fair_id, actor=actor,
                             project_id=project.id, category=project.category))


def _catalogue_searched(sender: object, *, fair_id: int, terms: str,
                        facets: Mapping[str, Any], results: int, page: bool = False,
                        **_: object) -> None:
    actor = recording_actor()
    if actor is None:
        return
    use_visitor()
    rows = []
    if page:
        rows.append(service.event_row(Kind.visit, fair_id=fair_id, actor=actor))
    searched = terms.strip() or any(value not in (None, "") for value in facets.values())
    if searched:
        rows.append(service.event_row(Kind.search, fair_id=fair_id, actor=actor,
                                      data=service.search_data(terms, facets, results)))
    record_many(rows)


def _hall_visited(sender: object, *, fair_id: int, hall_id: int, showcase_id: int | None,
                  **_: object) -> None:
    actor = recording_actor()
    if actor is None:
        return
    # A Socket.IO handler cannot set a cookie: a visitor seen only in a hall gets a new id.
    record(service.event_row(Kind.hall_visit, fair_id=fair_id, actor=actor, hall_id=hall_id,
                             showcase_id=showcase_id))


def _signed_in(sender: object, *, user: User, **_: object) -> None:
    actor = recording_actor()
    fair = fair_service.current_fair()
    if actor is None or fair is None:
        return
    # A sign-in counts for the fair the site shows (the home page's).
    record(service.event_row(Kind.sign_in, fair_id=fair.id,
                             actor=service.Actor.of(user, actor.visitor)))


def init_app(app: Flask) -> None:
    """Give the app its buffer, the visitor cookie, and listen to the packages' signals."""
    existing = app.extensions.get(EXTENSION_KEY)
    if existing is not None:
        existing.stop()
    app.extensions[EXTENSION_KEY] = Buffer(
        app, seconds=float(app.config["AUDIENCE_FLUSH_SECONDS"]))
    app.before_request(_forget_visitor)
    app.after_request(_set_visitor_cookie)
    if app.extensions[EXTENSION_KEY].seconds > 0:
        atexit.register(lambda: buffer(app).stop())
    signals.project_viewed.connect(_project_viewed)
    signals.catalogue_searched.connect(_catalogue_searched)
    signals.hall_visited.connect(_hall_visited)
    signals.signed_in.connect(_signed_in)
