"""The one server-to-client emitter: queued in the transaction, sent after commit, coalesced."""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

import socketio as python_socketio
from flask import Flask, current_app

from fair.database import after_commit, after_commit_batched
from fair.extensions import socketio
from livehalls import rooms
from livehalls.schemas import HALL_TOTALS_OMIT

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
EXTENSION_KEY = "fair.broadcast"
#: The committed news crosses the message queue as this event of a namespace no client joins.
NEWS_EVENT = "news"
NEWS_NAMESPACE = "/fair-news"
#: Seconds between two polls of the committed seq of the fairs this process's clients watch,
#: without a message queue: news committed by another process (the CLI) shows within it.
POLL = 0.5
#: Seconds between two reads of the unread counts of this process's signed-in clients, without
#: a message queue: a notification made by another process (the task consumer telling the
#: exhibitors a need matches, the CLI's replay) shows within it.
UNREAD_POLL = 2.0
#: Seconds between two ``seq`` heartbeats; with a message queue, which brings every process's
#: news, the poll only repairs what a lost message missed, at this pace too.
HEARTBEAT = 2.0
#: At most this many intents found in the database go out per poll; the rest on the next ones.
CATCH_UP = 200
#: The newest intents in a join's acknowledgement, for the ticker.
ACK_DEALS = 20
#: Ids of intents sent lately, per fair: news that arrives twice goes out once.
SENT_MEMORY = 4096


#: A DealEventSchema dump (livehalls.schemas): one intent as viewers see it.
Deal = Mapping[str, Any]
#: A TotalsSchema dump: a fair's totals with their seq.
Totals = Mapping[str, Any]


def deal_recorded(fair_id: int, *, deal: Deal) -> None:
    """A buyer recorded an intent, which moved the fair's totals."""
    _queue(_News(fair_id, deal))


def totals_changed(fair_id: int) -> None:
    """A fair's totals changed without a new intent (an intent was withdrawn)."""
    _queue(_News(fair_id, None))


def deal_secured(fair_id: int, *, deal_id: int) -> None:
    """A deposit on an active intent was paid, which moved the fair's secured figures."""
    _queue(_News(fair_id, None, secured=deal_id))


def snapshot(fair_id: int, *, hall: bool) -> tuple[Totals, list[Deal]]:
    """The fair's totals and newest intents (oldest first) for a join's acknowledgement: a hall's
    totals without HALL_TOTALS_OMIT. Call it once the client is in the fair's rooms: from then
    on this process sends the client whatever commits after what it read, wherever it was
    committed.
    """
    totals, deals = coalescer().acknowledgement(fair_id)
    return (_for_halls(totals) if hall else totals), deals


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


def unread_changed(user_id: int, *, unread: int) -> None:
    """A user's unread notifications changed: its own sockets hear the count, after commit."""
    after_commit(functools.partial(_emit_to_user, user_id, {"unread": unread}))


def _emit_to_user(user_id: int, payload: Mapping[str, int]) -> None:
    coalescer().unread_told(user_id, payload["unread"])
    socketio.emit("unread", payload, to=rooms.user_room(user_id), namespace=rooms.NAMESPACE)


def watch_unread(user_id: int) -> None:
    """A signed-in client connected: without a message queue, this process now reads its
    user's unread count every UNREAD_POLL seconds, since another process's notifications
    cannot reach its sockets (with one, they cross it)."""
    coalescer().watch_unread(user_id)


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


def news_redis_manager(app: Flask, redis_url: str) -> NewsRedisManager:
    """The Socket.IO message queue for the app, bringing committed news to its coalescer."""
    return NewsRedisManager(redis_url, channel=queue_channel(app.config["REDIS_PREFIX"]),
                     coalescer=_coalescer_of(app))


def queue_channel(prefix: str) -> str:
    """The Redis channel of the deployment whose keys start with `prefix` (REDIS_PREFIX)."""
    return f"{prefix}:socketio"


def init_app(app: Flask, *, readers: Readers) -> None:
    """Give the app its coalescer, with the readers of what it sends."""
    _coalescer_of(app).readers = readers


def _coalescer_of(app: Flask) -> Coalescer:
    """The app's coalescer, made on first use (by the message queue or by init_app)."""
    if EXTENSION_KEY not in app.extensions:
        app.extensions[EXTENSION_KEY] = Coalescer(app)
    found: Coalescer = app.extensions[EXTENSION_KEY]
    return found


@dataclass(frozen=True)
class _News:
    fair_id: int
    #: The new intent, or None when no intent was recorded.
    deal: Deal | None
    #: The intent whose deposit was paid.
    secured: int | None = None
    #: Not a change: this process's poll asks for the totals to be read and sent (never
    #: published to the other processes).
    nudge: bool = False


def _queue(news: _News) -> None:
    # Nothing leaves now: the news waits for the transaction's commit, so no viewer ever sees a
    # deal that was rolled back (Zulip's send_event_on_commit). A transaction's news leaves as
    # one batch: one publish to the other processes per commit.
    after_commit_batched(_deliver, news)


def _queue_hall(event_name: str, hall_id: int, payload: Mapping[str, Any]) -> None:
    # Hall news (on air, chat) is one message to one hall, rare next to deals: it leaves right
    # after the commit, without the coalescer.
    after_commit(functools.partial(_emit_to_hall, event_name, hall_id, payload))


def _emit_to_hall(event_name: str, hall_id: int, payload: Mapping[str, Any]) -> None:
    socketio.emit(event_name, payload, to=rooms.hall_room(hall_id), namespace=rooms.NAMESPACE)


def _deliver(news: Sequence[_News]) -> None:
    """Hand committed news to this process's coalescer and, through the queue, the others'.

    It runs after the commit (no SQL may run then): the news names what changed, and the
    coalescer reads the totals later, in a session of its own.
    """
    coalescer().submit(news)
    if isinstance(socketio.server.manager, NewsRedisManager):
        socketio.server.manager.publish(news)


def _encode(news: Sequence[_News]) -> str:
    # One JSON string: python-socketio would otherwise walk the payload for binary parts.
    return json.dumps([[item.fair_id, item.deal, item.secured] for item in news],
                      ensure_ascii=False, separators=(",", ":"))


def _decode(encoded: str) -> list[_News]:
    return [_News(fair_id, deal, secured) for fair_id, deal, secured in json.loads(encoded)]


class NewsRedisManager(python_socketio.RedisManager):
    """Socket.IO's Redis client manager, which also carries committed news to every process's
    coalescer.

    With ``REDIS_URL`` set, the committed news itself crosses the Socket.IO message queue, and
    every process coalesces it for its own clients only. A viewer so gets at most two messages
    per window however many processes sign intents, and each process pays for its own viewers
    only. A process that only writes (``fair simulate``) publishes its news the same way.

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


class DealsReader(Protocol):
    def __call__(self, fair_id: int, *, after: int | None, limit: int) -> list[Deal]: ...


@dataclass(frozen=True)
class Readers:
    """What the coalescer reads of the database, handed over by the app (from deals): this
    module imports nothing from deals, which dumps the payloads through livehalls.schemas."""

    #: A fair's totals as committed (a TotalsSchema dump).
    totals: Callable[[int], Totals]
    #: The committed seq of each of some fairs, in one query.
    seqs: Callable[[Collection[int]], Mapping[int, int]]
    #: A fair's active intents, oldest first: the ``limit`` newest (``after=None``), or the
    #: ``limit`` oldest with an id above ``after``.
    deals: DealsReader
    #: The unread notifications of each of some users, in one query (0 for those left out).
    unread: Callable[[Collection[int]], Mapping[int, int]]


@dataclass
class _Buffer:
    #: New intents by id: one that arrives twice (from the database and the queue) goes once.
    deals: dict[int, Deal] = field(default_factory=dict)
    secured: list[int] = field(default_factory=list)
    #: Changes of the totals other than new intents (withdrawals, deposits).
    changes: int = 0


class _Sent:
    """Ids of intents lately sent, the oldest forgotten first."""

    def __init__(self, size: int = SENT_MEMORY) -> None:
        self.size = size
        self._ids: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, deal_id: object) -> bool:
        return deal_id in self._ids

    def add(self, deal_id: int) -> None:
        self._ids[deal_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)


@dataclass
class _Followed:
    """What this process has told the clients of a fair, to find what it has not."""

    #: The newest seq it sent in ``totals`` or gave in an acknowledgement.
    sent_seq: int
    #: Every active intent up to this id was sent, given or looked for; None: not known yet.
    cursor: int | None
    sent: _Sent = field(default_factory=_Sent)
    #: The highest id sent.
    newest_sent: int = 0
    #: The seq moved further than the news this process sent: look in the database.
    suspect: bool = False
    #: When (monotonic) this process last sent the fair's totals, which carry the seq.
    totals_sent_at: float = -HEARTBEAT
    #: The totals and newest intents last read for an acknowledgement.
    acknowledged: tuple[Totals, list[Deal]] | None = None


def _listened(to: list[str]) -> bool:
    """Whether a client of this process is in one of the rooms."""
    participants = socketio.server.manager.get_participants(rooms.NAMESPACE, to)
    return next(iter(participants), None) is not None


def _held_rooms() -> list[str]:
    """The names of the rooms that hold a client of this process."""
    # A copy first: in threading mode a join may change the rooms meanwhile.
    held = list(socketio.server.manager.rooms.get(rooms.NAMESPACE, {}).items())
    return [name for name, members in held if isinstance(name, str) and members]


def _watched_fairs() -> set[int]:
    """The fairs whose rooms hold a client of this process."""
    return rooms.fairs_of(_held_rooms())


def _signed_in_users() -> set[int]:
    """The users whose room holds a socket of this process."""
    return rooms.users_of(_held_rooms())


def _for_halls(totals: Totals) -> Totals:
    """The totals as hall rooms get them."""
    return {key: value for key, value in totals.items() if key not in HALL_TOTALS_OMIT}


class Coalescer:
    """Per-fair buffers, flushed by one background task at most once per window; and, while
    this process has clients of a fair, what it sent them, checked against the database.

    A fair that was idle is flushed at once; a busy one at most once per window (``WINDOW``,
    then fitted to the process's audience by ``set_audience``), as one ``deals`` message (every
    new intent, oldest first) and one ``totals`` message, because the cost of a message is
    multiplied by every viewer. The totals are read when the message leaves
    (``Readers.totals``): one read per fair per window, always of committed changes, and
    nothing built while a writer holds the fair's totals lock. Dashboards get the whole totals,
    hall rooms all but ``HALL_TOTALS_OMIT``.

    News committed where no message reaches this process (the CLI's ``fair simulate`` on the
    embedded default, with no Redis) is found in the database: see ``follow``.
    """

    def __init__(self, app: Flask, *, window: float = WINDOW) -> None:
        self.app = app
        self.window = window
        self.readers: Readers | None = None
        #: Off, only ``flush()`` sends: tests that count messages per block turn it off.
        self.autoflush = True
        #: Off, nothing polls the database in the background; tests call ``follow()``.
        self.autofollow = True
        self._buffers: dict[int, _Buffer] = {}
        self._sending: set[int] = set()
        self._followed: dict[int, _Followed] = {}
        #: The unread count each signed-in user's sockets were last told.
        self._unread: dict[int, int] = {}
        self._following_unread = False
        self._running = False
        self._following = False
        # `_lock` guards the buffers and what was sent, and is never held while emitting or
        # reading the database; `_emit_lock` keeps two flushes (the task's and an explicit one)
        # from interleaving a fair's messages.
        self._lock = threading.Lock()
        self._emit_lock = threading.Lock()

    def required_readers(self) -> Readers:
        if self.readers is None:
            raise RuntimeError("broadcast.init_app gives the coalescer its readers.")
        return self.readers

    def submit(self, news: Sequence[_News]) -> None:
        """Buffer committed news; start the flushing task if it is not running."""
        with self._lock:
            for item in news:
                buffer = self._buffers.setdefault(item.fair_id, _Buffer())
                if item.deal is not None:
                    buffer.deals[item.deal["id"]] = item.deal
                elif item.secured is not None:
                    buffer.secured.append(item.secured)
                    buffer.changes += 1
                elif not item.nudge:  # a nudge only makes the flush read the totals
                    buffer.changes += 1
            if self._running or not self.autoflush:
                return
            self._running = True
        socketio.start_background_task(self._run)

    def flush(self) -> None:
        """Send one ``deals`` and one ``totals`` message for each fair with news."""
        with self._emit_lock:
            with self._lock:
                buffers, self._buffers = self._buffers, {}
                self._sending = set(buffers)
            for fair_id, buffer in buffers.items():
                try:
                    self._send(fair_id, buffer)
                except Exception:
                    # Say, the database is away: this fair's viewers miss one window (they catch
                    # up with the next totals, or on reconnect); the other fairs' still go out.
                    logger.exception("Could not send the news of fair %s.", fair_id)
            with self._lock:
                self._sending = set()

    def acknowledgement(self, fair_id: int) -> tuple[Totals, list[Deal]]:
        """The fair's totals and newest intents for a client that has just joined its rooms.

        Read once and given to every join until this process sends the fair anything newer:
        a join costs no query then (a hall of 5,000 filling up read them 5,000 times). What
        commits after the read reaches the client as news, since it is in the rooms; news that
        left before the join (or found nobody to tell) drops what was read, and a flush under
        way, which may have emitted its intents before the client joined, makes it read afresh.
        """
        with self._lock:
            state = self._followed.get(fair_id)
            given = state.acknowledged if state is not None else None
            if (given is not None and given[0]["seq"] == state.sent_seq
                    and fair_id not in self._sending):
                return given
        readers = self.required_readers()
        totals = readers.totals(fair_id)
        deals = readers.deals(fair_id, after=None, limit=ACK_DEALS)
        self.watch(fair_id, seq=totals["seq"], newest=deals[-1]["id"] if deals else 0)
        with self._lock:
            state = self._followed.get(fair_id)
            if (state is not None and totals["seq"] >= state.sent_seq
                    and fair_id not in self._sending):
                state.acknowledged = (totals, deals)
        return totals, deals

    def watch(self, fair_id: int, *, seq: int, newest: int) -> None:
        """A client of this process now watches the fair, having been given its totals at `seq`
        and its intents up to the id `newest`; follow what commits from then on."""
        with self._lock:
            self._followed.setdefault(fair_id, _Followed(sent_seq=seq, cursor=newest))
            if self._following or not self.autofollow:
                return
            self._following = True
        socketio.start_background_task(self._follow_all_the_while)

    def follow(self, *, heartbeat: bool = False) -> bool:
        """Poll the committed seq of every fair this process's clients watch, and send what was
        committed without reaching this process, as ordinary news; with `heartbeat`, send each
        fair's clients its seq. False when no client watches any fair."""
        with self._lock:
            # Under the lock, so that a join cannot set a fair up between the look and the drop.
            watched = _watched_fairs()
            for fair_id in self._followed.keys() - watched:
                del self._followed[fair_id]
            followed = sorted(watched & self._followed.keys())
        if not followed:
            return bool(watched)
        committed = self.required_readers().seqs(followed)
        for fair_id in followed:
            self._catch_up(fair_id, committed.get(fair_id, 0))
        if heartbeat:
            for fair_id in self._needing_heartbeat(followed, committed):
                to = [rooms.fair_room(fair_id), rooms.dashboard_room(fair_id)]
                socketio.emit("seq", {"fair_id": fair_id, "seq": committed.get(fair_id, 0)},
                              to=to, namespace=rooms.NAMESPACE, ignore_queue=True)
        return True

    def _needing_heartbeat(self, fair_ids: list[int], committed: Mapping[int, int]) -> list[int]:
        """The fairs whose clients did not lately get totals naming the committed seq: a busy
        fair's totals are its heartbeat, and a ``seq`` on top would cost every viewer a message."""
        now = time.monotonic()
        with self._lock:
            return [fair_id for fair_id in fair_ids
                    if (state := self._followed.get(fair_id)) is None
                    or committed.get(fair_id, 0) != state.sent_seq
                    or now - state.totals_sent_at >= HEARTBEAT]

    def _catch_up(self, fair_id: int, committed: int) -> None:
        """Read and submit the fair's intents this process has not sent, if the seq says some
        changes never reached it."""
        with self._lock:
            state = self._followed.get(fair_id)
            if state is None:
                return
            # A seq ahead of what was sent may be news on its way here (buffered, or being
            # sent), whose flush says whether more is missing; a flush that said so is heeded.
            pending = fair_id in self._buffers or fair_id in self._sending
            if not (state.suspect or (committed > state.sent_seq and not pending)):
                return
            cursor = state.cursor
        readers = self.required_readers()
        if cursor is None:
            # Sent to before any join told what it had (its state was dropped meanwhile): what
            # came before now is not looked for.
            newest = readers.deals(fair_id, after=None, limit=1)
            cursor = newest[-1]["id"] if newest else 0
        found = readers.deals(fair_id, after=cursor, limit=CATCH_UP)
        with self._lock:
            fresh = [deal for deal in found if deal["id"] not in state.sent]
            state.cursor = max(cursor, found[-1]["id"] if found else 0, state.cursor or 0)
            state.suspect = len(found) == CATCH_UP
            behind = committed > state.sent_seq
        if fresh or behind:
            self.submit([*(_News(fair_id, deal) for deal in fresh),
                         _News(fair_id, None, nudge=True)])

    def _follow_all_the_while(self) -> None:
        # Runs while this process has clients of a fair; the next join restarts it.
        queued = isinstance(socketio.server.manager, NewsRedisManager)
        pause = HEARTBEAT if queued else POLL
        next_heartbeat = time.monotonic() + HEARTBEAT
        while True:
            socketio.sleep(pause)
            heartbeat = time.monotonic() >= next_heartbeat
            if heartbeat:
                next_heartbeat = time.monotonic() + HEARTBEAT
            try:
                with self.app.app_context():
                    watched = self.follow(heartbeat=heartbeat)
            except Exception:
                logger.exception("Could not check the committed news; trying again.")
                watched = True
            with self._lock:
                if not watched and not self._followed:
                    self._following = False
                    return

    def unread_told(self, user_id: int, unread: int) -> None:
        with self._lock:
            if user_id in self._unread:
                self._unread[user_id] = unread

    def watch_unread(self, user_id: int) -> None:
        """Follow the user's unread count from what it is now (what its client reads on
        connecting), in the background; not with a message queue, which brings every change."""
        if isinstance(socketio.server.manager, NewsRedisManager):
            return
        unread = self.required_readers().unread([user_id]).get(user_id, 0)
        with self._lock:
            self._unread[user_id] = unread
            if self._following_unread or not self.autofollow:
                return
            self._following_unread = True
        socketio.start_background_task(self._follow_unread_all_the_while)

    def follow_unread(self) -> bool:
        """Tell each signed-in user this process follows its unread count where it is not
        what its sockets were last told; False when none of them is connected any more."""
        connected = _signed_in_users()
        with self._lock:
            self._unread = {user: count for user, count in self._unread.items()
                            if user in connected}
            users = sorted(self._unread)
        if not users:
            return False
        counts = self.required_readers().unread(users)
        for user_id in users:
            unread = counts.get(user_id, 0)
            with self._lock:
                if self._unread.get(user_id, unread) == unread:
                    continue
            _emit_to_user(user_id, {"unread": unread})
        return True

    def _follow_unread_all_the_while(self) -> None:
        # Runs while this process has signed-in clients; the next one to connect restarts it.
        while True:
            socketio.sleep(UNREAD_POLL)
            try:
                with self.app.app_context():
                    connected = self.follow_unread()
            except Exception:
                logger.exception("Could not read the unread counts; trying again.")
                connected = True
            with self._lock:
                if not connected and not self._unread:
                    self._following_unread = False
                    return

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
        halls, dashboards = rooms.fair_room(fair_id), rooms.dashboard_room(fair_id)
        to = [halls, dashboards]
        with self._lock:
            if (state := self._followed.get(fair_id)) is not None:
                state.acknowledged = None  # older than this news, which nobody may hear
        if not _listened(to):
            return  # nobody here to tell, so no totals to read
        readers = self.required_readers()
        with self._lock:
            state = self._followed.setdefault(fair_id, _Followed(sent_seq=0, cursor=None))
            # Several processes' news can arrive out of order; ids follow the commits.
            deals = [deal for deal_id, deal in sorted(buffer.deals.items())
                     if deal_id not in state.sent]
            for deal in deals:
                state.sent.add(deal["id"])
            if deals:
                state.newest_sent = max(state.newest_sent, deals[-1]["id"])
        if deals:
            if logger.isEnabledFor(logging.DEBUG):
                # This process's own send times, what the tests check the coalescing by; written
                # before the send, so that a client that has the message finds the line.
                logger.debug("deals fair=%s ids=%s", fair_id,
                             ",".join(str(deal["id"]) for deal in deals))
            socketio.emit("deals", {"fair_id": fair_id, "deals": deals}, to=to,
                          namespace=rooms.NAMESPACE, ignore_queue=True)
        if buffer.secured:
            secured = {"fair_id": fair_id, "deal_ids": sorted(set(buffer.secured))}
            socketio.emit("secured", secured, to=to, namespace=rooms.NAMESPACE,
                          ignore_queue=True)
        # Read after every commit the news stands for, in a context (and session) of its own.
        with self.app.app_context():
            totals = readers.totals(fair_id)
        with self._lock:
            newer = totals["seq"] > state.sent_seq
            if totals["seq"] - state.sent_seq > len(deals) + buffer.changes:
                # More changes were committed than this news stands for: some came from a
                # process that could not tell this one (the CLI on the embedded default).
                state.suspect = True
            elif not state.suspect and state.cursor is not None:
                state.cursor = max(state.cursor, state.newest_sent)
            state.sent_seq = max(state.sent_seq, totals["seq"])
        if not (newer or buffer.changes):
            return  # the clients have these totals already
        with self._lock:
            state.totals_sent_at = time.monotonic()
        if _listened([dashboards]):
            socketio.emit("totals", totals, to=dashboards, namespace=rooms.NAMESPACE,
                          ignore_queue=True)
        if _listened([halls]):
            socketio.emit("totals", _for_halls(totals), to=halls, namespace=rooms.NAMESPACE,
                          ignore_queue=True)
