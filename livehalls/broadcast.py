"""The one server-to-client emitter: queued in the transaction, sent after commit, coalesced.

A use case tells this module what happened (``deal_recorded`` with the deal's payload,
``totals_changed``). Nothing leaves at that moment: the news waits in the database session and is
handed on only when the transaction commits, so no viewer ever sees a deal that was rolled back
(Zulip's ``send_event_on_commit``). Each process's coalescer keeps a buffer per fair. A fair that
was idle is flushed at once; a busy one at most once per window (``WINDOW``, then fitted to the
process's audience by ``set_audience``), as one ``deals`` message (every new intent, oldest
first) and one ``totals`` message, because the cost of a message is multiplied by every viewer.
The totals are read when the message leaves (``read_totals``, given by ``init_app``): one read
per fair per window, always of committed changes, and nothing built while a writer holds the
fair's totals lock.

With ``REDIS_URL`` set, the committed news itself crosses the Socket.IO message queue
(``NewsQueue``), and every process coalesces it for its own clients only. A viewer so gets at
most two messages per window however many processes sign intents, and each process pays for its
own viewers only. A process that only writes (``fair simulate``) publishes its news the same way.

This module is a leaf: it imports nothing from ``deals``, which builds the deal payloads and
hands over its totals reader.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import socketio as python_socketio
from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from fair.extensions import db, socketio
from livehalls import rooms

logger = logging.getLogger(__name__)

#: Seconds between two flushes of a busy fair. It bounds the extra latency of a deal during a
#: burst and caps each viewer at two messages (deals, totals) per window, ten a second.
WINDOW = 0.1
#: Once the audience is counted (livehalls.presence calls ``set_audience`` every second with this
#: process's hall viewers and dashboards), the window follows it: AUDIENCE / AUDIENCE_PER_SECOND
#: seconds, between MIN_WINDOW and MAX_WINDOW. Each window costs two sends per client, so deals
#: and totals cost a process at most about 2 x AUDIENCE_PER_SECOND sends a second however big
#: its audience: 50 ms up to 200 clients, 0.125 s at 500, 0.25 s at 1,000, 1 s from 4,000.
MIN_WINDOW = 0.05
MAX_WINDOW = 1.0
AUDIENCE_PER_SECOND = 4_000
#: Where the news of the open transaction waits: ``db.session.info[QUEUE_KEY]``.
QUEUE_KEY = "fair.broadcasts"
EXTENSION_KEY = "fair.broadcast"
#: The committed news crosses the message queue as this event of a namespace no client joins.
NEWS_EVENT = "news"
NEWS_NAMESPACE = "/fair-news"
#: Hall news of the open transaction (on air, chat): one message to one hall each, rare next
#: to deals, so they leave right after commit without the coalescer.
HALL_QUEUE_KEY = "fair.hall_broadcasts"


class ProjectRef(TypedDict):
    id: int
    title: str


class DealEventPayload(TypedDict):
    """One intent as viewers see it; ``amount`` is yuan as a decimal string."""

    id: int
    hall_id: int | None
    project: ProjectRef
    buyer_province: str
    amount: str
    created_at: str


class BreakdownEntry(TypedDict):
    amount: str
    deal_count: int


class TotalsPayload(TypedDict):
    """A full snapshot of a fair's totals; ``seq`` grows by one with every change."""

    seq: int
    fair_id: int
    amount: str
    deal_count: int
    project_count: int
    buyer_count: int
    by_buyer_province: dict[str, BreakdownEntry]
    by_exhibitor_province: dict[str, BreakdownEntry]
    by_category: dict[str, BreakdownEntry]
    by_hall: dict[str, BreakdownEntry]
    by_exhibitor: dict[str, BreakdownEntry]


class DealsMessage(TypedDict):
    """The ``deals`` event: the new intents of one fair, oldest first."""

    fair_id: int
    deals: list[DealEventPayload]


def deal_recorded(fair_id: int, *, deal: DealEventPayload) -> None:
    """A buyer recorded an intent, which moved the fair's totals."""
    _queue(_News(fair_id, deal))


def totals_changed(fair_id: int) -> None:
    """A fair's totals changed without a new intent (an intent was withdrawn)."""
    _queue(_News(fair_id, None))


class FiguresPayload(TypedDict):
    viewers: int
    visits: int
    peak_viewers: int


class ViewersPayload(TypedDict):
    """The ``viewers`` event: one hall's viewer figures, and its fair's under ``fair``."""

    hall_id: int
    fair_id: int
    viewers: int
    visits: int
    peak_viewers: int
    fair: FiguresPayload


class ChatUserRef(TypedDict):
    id: int
    name: str


class ChatPayload(TypedDict):
    """The ``chat`` event: one line, plain text, for the pages to insert as text."""

    hall_id: int
    id: int
    user: ChatUserRef
    text: str
    at: str


def on_air_changed(hall_id: int, *, showcase: Mapping[str, Any] | None) -> None:
    """An organiser put a showcase on air in the hall (its ShowcaseSchema dump), or none."""
    _queue_hall("on_air", hall_id, {"hall_id": hall_id, "showcase": showcase})


def chat_posted(message: ChatPayload) -> None:
    """Someone said something in a hall's chat."""
    _queue_hall("chat", message["hall_id"], message)


def chat_hidden(hall_id: int, *, message_id: int) -> None:
    """An organiser hid a chat line: every page removes it."""
    _queue_hall("chat_hidden", hall_id, {"hall_id": hall_id, "id": message_id})


def viewers_changed(figures: ViewersPayload) -> None:
    """A hall's viewer figures moved: tell the hall and the fair's dashboards now.

    Viewer counts belong to no transaction, and livehalls.presence already calls this at most
    once per hall per window, so it skips the after-commit queue and the coalescer.
    """
    to = [rooms.hall_room(figures["hall_id"]), rooms.dashboard_room(figures["fair_id"])]
    socketio.emit("viewers", figures, to=to, namespace=rooms.NAMESPACE)


def set_audience(viewers: int) -> None:
    """This process serves `viewers` hall viewers: fit the flush window to them."""
    coalescer().window = min(MAX_WINDOW, max(MIN_WINDOW, viewers / AUDIENCE_PER_SECOND))


def flush() -> None:
    """Send everything the coalescer of the current app holds, now."""
    coalescer().flush()


def coalescer() -> Coalescer:
    """The coalescer of the current app."""
    found: Coalescer = current_app.extensions[EXTENSION_KEY]
    return found


def news_queue(app: Flask, redis_url: str) -> NewsQueue:
    """The Socket.IO message queue for the app, bringing committed news to its coalescer."""
    return NewsQueue(redis_url, channel=queue_channel(app.config["REDIS_PREFIX"]),
                     coalescer=_coalescer_of(app))


def queue_channel(prefix: str) -> str:
    """The Redis channel of the deployment whose keys start with `prefix` (REDIS_PREFIX)."""
    return f"{prefix}:socketio"


def init_app(app: Flask, *, read_totals: TotalsReader) -> None:
    """Give the app its coalescer, with the reader of the totals it sends, and hook the
    session's commit and rollback."""
    _coalescer_of(app).read_totals = read_totals
    # One listener serves every app: `db.session` is shared, the coalescer is the app's own.
    if not event.contains(db.session, "after_commit", _after_commit):
        event.listen(db.session, "after_commit", _after_commit)
        event.listen(db.session, "after_rollback", _after_rollback)


def _coalescer_of(app: Flask) -> Coalescer:
    """The app's coalescer, made on first use (by the message queue or by init_app)."""
    if EXTENSION_KEY not in app.extensions:
        app.extensions[EXTENSION_KEY] = Coalescer(app)
    found: Coalescer = app.extensions[EXTENSION_KEY]
    return found


@dataclass(frozen=True)
class _News:
    fair_id: int
    #: The new intent, or None when only the totals moved.
    deal: DealEventPayload | None


def _queue(news: _News) -> None:
    db.session.info.setdefault(QUEUE_KEY, []).append(news)


def _queue_hall(event_name: str, hall_id: int, payload: Mapping[str, Any]) -> None:
    db.session.info.setdefault(HALL_QUEUE_KEY, []).append((event_name, hall_id, payload))


def _after_commit(session: Session) -> None:
    # No SQL may run here (the transaction is over): the news names what changed, and the
    # coalescer reads the totals later, in a session of its own.
    news = session.info.pop(QUEUE_KEY, None)
    if news:
        _deliver(news)
    for event_name, hall_id, payload in session.info.pop(HALL_QUEUE_KEY, []):
        socketio.emit(event_name, payload, to=rooms.hall_room(hall_id), namespace=rooms.NAMESPACE)


def _deliver(news: Sequence[_News]) -> None:
    """Hand committed news to this process's coalescer and, through the queue, the others'."""
    coalescer().submit(news)
    if isinstance(socketio.server.manager, NewsQueue):
        socketio.server.manager.publish(news)


def _encode(news: Sequence[_News]) -> str:
    # One JSON string: python-socketio would otherwise walk the payload for binary parts.
    return json.dumps([[item.fair_id, item.deal] for item in news], ensure_ascii=False,
                      separators=(",", ":"))


def _decode(encoded: str) -> list[_News]:
    return [_News(fair_id, deal) for fair_id, deal in json.loads(encoded)]


class NewsQueue(python_socketio.RedisManager):
    """Socket.IO's Redis queue, which also carries committed news to every process's coalescer.

    An emit runs ``_handle_emit`` in its own process, then in every other process once Redis
    delivers it. News is taken out there (its own process submitted it already), and everything
    else goes on as python-socketio would send it.
    """

    def __init__(self, url: str, *, coalescer: Coalescer, **options: Any) -> None:
        super().__init__(url, **options)
        self.coalescer = coalescer
        self._outbox: list[_News] = []
        self._publishing = False
        self._outbox_lock = threading.Lock()

    def publish(self, news: Sequence[_News]) -> None:
        """Send committed news to the other processes: at once when no message is on its way
        to Redis, else with it in the next one. So a busy process publishes a message per
        round trip to Redis instead of one per intent, and an idle one (or a script that exits
        right after its commit) has sent its news before it goes on."""
        with self._outbox_lock:
            self._outbox.extend(news)
            if self._publishing:
                return
            self._publishing = True
            batch, self._outbox = self._outbox, []
        try:
            self._publish_batch(batch)
        finally:
            with self._outbox_lock:
                more = self._publishing = bool(self._outbox)
            if more:
                # News came in meanwhile: a background task sends it, not this request.
                socketio.start_background_task(self._publish_outbox)

    def _publish_outbox(self) -> None:
        while True:
            with self._outbox_lock:
                batch, self._outbox = self._outbox, []
                if not batch:
                    self._publishing = False
                    return
            self._publish_batch(batch)

    def _publish_batch(self, news: list[_News]) -> None:
        try:
            socketio.emit(NEWS_EVENT, _encode(news), namespace=NEWS_NAMESPACE)
        except Exception:
            # Redis is away (python-socketio already tried again): the other processes'
            # viewers miss these deals and catch up with the next totals.
            logger.exception("Could not publish %d news items to the other processes.",
                             len(news))

    def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("namespace") != NEWS_NAMESPACE:
            super()._handle_emit(message)
            return
        if message.get("host_id") == self.host_id:
            return
        try:
            news = _decode(message["data"][0])
        except (TypeError, ValueError, KeyError, IndexError):
            logger.warning("Dropped malformed news from the message queue.")
            return
        self.coalescer.submit(news)


def _after_rollback(session: Session) -> None:
    # A SAVEPOINT's rollback lands here too and drops the whole queue: never a rolled-back
    # deal, at worst a missed message that the next totals snapshot repairs. So use cases
    # queue their news last, after any savepoint.
    session.info.pop(QUEUE_KEY, None)
    session.info.pop(HALL_QUEUE_KEY, None)


@dataclass
class _Buffer:
    deals: list[DealEventPayload] = field(default_factory=list)


def _listened(to: list[str]) -> bool:
    """Whether a client of this process is in one of the rooms."""
    participants = socketio.server.manager.get_participants(rooms.NAMESPACE, to)
    return next(iter(participants), None) is not None


#: Reads a fair's totals as committed: deals.totals.read_totals, handed over by ``init_app``.
TotalsReader = Callable[[int], TotalsPayload]


class Coalescer:
    """Per-fair buffers, flushed by one background task at most once per window."""

    def __init__(self, app: Flask, *, window: float = WINDOW) -> None:
        self.app = app
        self.window = window
        self.read_totals: TotalsReader | None = None
        #: Off, only ``flush()`` sends: tests that count messages per block turn it off.
        self.autoflush = True
        self._buffers: dict[int, _Buffer] = {}
        self._running = False
        # `_lock` guards the buffers and is never held while emitting; `_emit_lock` keeps two
        # flushes (the task's and an explicit one) from interleaving a fair's messages.
        self._lock = threading.Lock()
        self._emit_lock = threading.Lock()

    def submit(self, news: Sequence[_News]) -> None:
        """Buffer committed news; start the flushing task if it is not running."""
        with self._lock:
            for item in news:
                buffer = self._buffers.setdefault(item.fair_id, _Buffer())
                if item.deal is not None:
                    buffer.deals.append(item.deal)
            if self._running or not self.autoflush:
                return
            self._running = True
        socketio.start_background_task(self._run)

    def flush(self) -> None:
        """Send one ``deals`` and one ``totals`` message for each fair with news."""
        with self._emit_lock:
            with self._lock:
                buffers, self._buffers = self._buffers, {}
            for fair_id, buffer in buffers.items():
                try:
                    self._send(fair_id, buffer)
                except Exception:
                    # Say, the database is away: this fair's viewers miss one window (they catch
                    # up with the next totals, or on reconnect); the other fairs' still go out.
                    logger.exception("Could not send the news of fair %s.", fair_id)

    def _run(self) -> None:
        # The first flush is immediate (the fair was idle); then one per window while news
        # keeps coming, and the task ends when a window passes without any.
        try:
            while True:
                self.flush()
                socketio.sleep(self.window)
                with self._lock:
                    if not self._buffers:
                        self._running = False
                        return
        except Exception:
            logger.exception("The broadcast task failed; the next commit restarts it.")
            with self._lock:
                self._running = False

    def _send(self, fair_id: int, buffer: _Buffer) -> None:
        # To this process's clients only: every process coalesces the news for its own.
        to = [rooms.fair_room(fair_id), rooms.dashboard_room(fair_id)]
        if not _listened(to):
            return  # nobody here to tell, so no totals to read
        if buffer.deals:
            # Several processes' news can arrive out of order; ids follow the commits.
            deals = sorted(buffer.deals, key=lambda deal: deal["id"])
            message: DealsMessage = {"fair_id": fair_id, "deals": deals}
            if logger.isEnabledFor(logging.DEBUG):
                # This process's own send times, what the tests check the coalescing by; written
                # before the send, so that a client that has the message finds the line.
                logger.debug("deals fair=%s ids=%s", fair_id,
                             ",".join(str(deal["id"]) for deal in deals))
            socketio.emit("deals", message, to=to, namespace=rooms.NAMESPACE, ignore_queue=True)
        if self.read_totals is None:
            raise RuntimeError("broadcast.init_app gives the coalescer its totals reader.")
        # Read after every commit the news stands for, in a context (and session) of its own.
        with self.app.app_context():
            totals = self.read_totals(fair_id)
        socketio.emit("totals", totals, to=to, namespace=rooms.NAMESPACE, ignore_queue=True)
