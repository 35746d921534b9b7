"""Viewer figures: viewers now, visits (人次) and peak, per hall and for the whole fair."""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import redis
from flask import Flask, current_app
from sqlalchemy import case, func, select, update

from fair import health
from fair.database import use_case
from fair.extensions import db, socketio
from livehalls import broadcast
from livehalls.broadcast import FiguresPayload, ViewersPayload
from livehalls.models import FairAudience, Hall

logger = logging.getLogger(__name__)

#: Seconds between two ticks: mirror this process's counts, send changed halls' figures.
WINDOW = 1.0
#: A hall's figures go out at most once a window, and in a big hall at most once per this many
#: viewers a second: figures every second to 5,000 viewers would cost more than the deals do.
VIEWERS_PER_SECOND = 1000
#: Seconds between two writes of visits and peaks to the database. They must outlive processes
#: and Redis (``halls.visits``, ``halls.peak_viewers``, ``fair_audiences.peak_viewers``); until
#: written they wait as this process's *pending* figures, which readers add in.
FLUSH = 5.0
#: Seconds a process's counts stay in Redis after its last heartbeat (one per tick).
EXPIRY = 15
#: A viewer back in a hall within this many seconds of being there (a reconnect, a page
#: reloaded, another tab opened later) makes no new visit.
VISIT_WINDOW = 30 * 60
EXTENSION_KEY = "fair.presence"


@dataclass(frozen=True)
class Figures:
    viewers: int
    visits: int
    peak_viewers: int

    def as_payload(self) -> FiguresPayload:
        return {"viewers": self.viewers, "visits": self.visits,
                "peak_viewers": self.peak_viewers}


def hall_scope(hall_id: int) -> str:
    return f"hall:{hall_id}"


def fair_scope(fair_id: int) -> str:
    return f"fair:{fair_id}"


@dataclass(frozen=True)
class Shared:
    """What the other live processes hold for some scopes."""

    viewers: Mapping[str, int]
    pending_visits: Mapping[str, int]
    peaks: Mapping[str, int]


class Store(Protocol):
    """Where a process publishes its counts and reads everybody else's."""

    def publish(self, viewers: Mapping[str, int], pending_visits: Mapping[str, int],
                peaks: Mapping[str, int]) -> None: ...

    def others(self, scopes: Iterable[str]) -> Shared: ...

    def withdraw(self) -> None: ...


class LocalStore:
    """The embedded deployment (no ``REDIS_URL``): the one process is the whole audience."""

    def publish(self, viewers: Mapping[str, int], pending_visits: Mapping[str, int],
                peaks: Mapping[str, int]) -> None:
        return None

    def others(self, scopes: Iterable[str]) -> Shared:
        return Shared({}, {}, {})

    def withdraw(self) -> None:
        return None


class RedisStore:
    """Every process's counts in its own expiring hash; a sorted set lists the live ones.

    The hash expires ``EXPIRY`` seconds after the process's last heartbeat, so the viewers of a
    process that died age out on their own. A reader adds its own counts to those of every
    other live process. When Redis is unreachable the process keeps serving with its own
    counts, logs, and rewrites its whole hash as soon as Redis answers again (after a restart
    Redis is empty; the processes rebuild it within a heartbeat).

    Fields of a process hash: ``v:<scope>`` viewers, ``n:<scope>`` visits not yet in the
    database, ``k:<scope>`` the highest viewers seen and not yet in the database.
    """

    def __init__(self, url: str, *, prefix: str, expiry: int = EXPIRY) -> None:
        self.prefix = prefix
        self.expiry = expiry
        self._pid = 0
        self.process_id = ""
        self.redis = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2, decode_responses=True
        )

    @property
    def key(self) -> str:
        return self._process_key(self._identity())

    @property
    def processes_key(self) -> str:
        return f"{self.prefix}:processes"

    def _process_key(self, process_id: str) -> str:
        return f"{self.prefix}:process:{process_id}"

    def _identity(self) -> str:
        # Named on first use in each process: gunicorn may fork after the app was created.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self.process_id = _process_id()
        return self.process_id

    def publish(self, viewers: Mapping[str, int], pending_visits: Mapping[str, int],
                peaks: Mapping[str, int]) -> None:
        fields: dict[str, int] = {}
        fields.update({f"v:{scope}": count for scope, count in viewers.items()})
        fields.update({f"n:{scope}": count for scope, count in pending_visits.items()})
        fields.update({f"k:{scope}": count for scope, count in peaks.items()})
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        # The whole hash is rewritten each time, so a Redis that restarted empty is rebuilt.
        pipe.delete(self.key)
        if fields:
            pipe.hset(self.key, mapping=fields)
            pipe.expire(self.key, self.expiry)
        pipe.zadd(self.processes_key, {self._identity(): now})
        pipe.zremrangebyscore(self.processes_key, "-inf", now - self.expiry)
        pipe.execute()

    def others(self, scopes: Iterable[str]) -> Shared:
        scopes = list(scopes)
        processes = [
            name for name in self.redis.zrangebyscore(self.processes_key,
                                                      time.time() - self.expiry, "+inf")
            if name != self._identity()
        ]
        viewers: Counter[str] = Counter()
        pending: Counter[str] = Counter()
        peaks: dict[str, int] = {}
        if not processes:
            return Shared(viewers, pending, peaks)
        names = [f"{kind}:{scope}" for scope in scopes for kind in ("v", "n", "k")]
        pipe = self.redis.pipeline(transaction=False)
        for process in processes:
            pipe.hmget(self._process_key(process), names)
        for values in pipe.execute():
            for name, value in zip(names, values, strict=True):
                if value is None:
                    continue
                kind, scope = name.split(":", 1)
                if kind == "v":
                    viewers[scope] += int(value)
                elif kind == "n":
                    pending[scope] += int(value)
                else:
                    peaks[scope] = max(peaks.get(scope, 0), int(value))
        return Shared(viewers, pending, peaks)

    def live_processes(self) -> int:
        """How many processes published within the expiry: those with viewers."""
        return int(self.redis.zcount(self.processes_key, time.time() - self.expiry, "+inf"))

    def withdraw(self) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.key)
        pipe.zrem(self.processes_key, self._identity())
        pipe.execute()


def _process_id() -> str:
    # The random part keeps a restarted process with a recycled pid from reusing a record.
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Presence:
    """This process's viewers, the figures of every hall and fair, and the ticker.

    A viewer is a person in a hall, however many connections (tabs, reconnects) it has there:
    a signed-in user, an anonymous visitor by its first-party cookie, or by its address when it
    sent none (the events say who, ``viewer``), so thirty sockets of one client are one viewer
    (a viewer in two halls of a fair counts once for the fair). A visit is a viewer coming into
    a hall it was not in within VISIT_WINDOW. Each process knows its own connections exactly
    and keeps them in memory; its ``store`` shares them with the other processes, which add up:
    nginx's sticky sessions keep one client on one process.
    """

    def __init__(self, app: Flask, store: Store, *, window: float = WINDOW,
                 flush_every: float = FLUSH) -> None:
        self.app = app
        self.store = store
        self.window = window
        self.flush_every = flush_every
        #: Off, nothing runs in the background; tests call ``tick()`` and ``flush()``.
        self.autotick = True
        self.clock = time.monotonic
        # Each connection's halls, with the fair of each, and the viewer it counts for.
        self._halls: dict[str, dict[int, int]] = {}
        self._viewer_of: dict[str, str] = {}
        # Per scope and viewer, its connections there: it is one viewer while any is.
        self._connections: Counter[tuple[str, str]] = Counter()
        # When each viewer last came into or left each hall, oldest first: VISIT_WINDOW.
        self._last_seen: OrderedDict[tuple[int, str], float] = OrderedDict()
        # Connections with a dashboard open: no viewers, but they hear every deal and total.
        self._dashboards: set[str] = set()
        #: The fair of every hall this process has seen a viewer of.
        self._fair_of: dict[int, int] = {}
        self._viewers: Counter[str] = Counter()
        self._pending_visits: Counter[str] = Counter()
        self._peaks: dict[str, int] = {}
        # Other processes' viewers as last read: a join raises the peak without asking Redis.
        self._others_seen: dict[str, int] = {}
        # Per hall: when, what the other processes held, what the database held.
        self._recent: dict[int, tuple[float, Shared, StoredFigures]] = {}
        self._dirty: set[int] = set()
        #: When each hall's next `viewers` message may go out.
        self._next_figures: dict[int, float] = {}
        self._published = False
        self._running = False
        self._last_flush = time.monotonic()
        self._store_failing = False
        self._lock = threading.Lock()
        _live_presences.add(self)

    # Changes, from the Socket.IO handlers.

    def join(self, sid: str, *, hall_id: int, fair_id: int, viewer: str | None = None) -> bool:
        """Count a connection into a hall for its viewer (None: the connection is its own
        viewer); True when that makes a visit, False when the viewer was in the hall (or
        left it less than VISIT_WINDOW ago) or the connection was there already."""
        viewer = viewer or f"connection:{sid}"
        now = self.clock()
        with self._lock:
            halls = self._halls.setdefault(sid, {})
            if hall_id in halls:
                return False
            viewer = self._viewer_of.setdefault(sid, viewer)
            seen = (hall_id, viewer)
            visit = not self._connections[hall_scope(hall_id), viewer] and (
                now - self._last_seen.get(seen, now - VISIT_WINDOW) >= VISIT_WINDOW)
            if fair_id not in halls.values():
                self._enter(fair_scope(fair_id), viewer)
            halls[hall_id] = fair_id
            self._fair_of[hall_id] = fair_id
            self._enter(hall_scope(hall_id), viewer)
            self._seen(seen, now)
            for key in (hall_scope(hall_id), fair_scope(fair_id)):
                if visit:
                    self._pending_visits[key] += 1
                viewers = self._viewers[key] + self._others_seen.get(key, 0)
                if viewers > self._peaks.get(key, 0):
                    self._peaks[key] = viewers
            self._dirty.add(hall_id)
        self._start()
        return visit

    def leave(self, sid: str, *, hall_id: int) -> bool:
        """Take a connection out of a hall; False when it was not there."""
        with self._lock:
            halls = self._halls.get(sid, {})
            fair_id = halls.pop(hall_id, None)
            if fair_id is None:
                return False
            viewer = self._viewer_of[sid]
            if not halls:
                del self._halls[sid]
                del self._viewer_of[sid]
            self._exit(hall_scope(hall_id), viewer)
            if fair_id not in halls.values():
                self._exit(fair_scope(fair_id), viewer)
            self._seen((hall_id, viewer), self.clock())
            self._dirty.add(hall_id)
        self._start()
        return True

    # Under the lock: a viewer is counted while it has a connection in the scope.

    def _enter(self, scope: str, viewer: str) -> None:
        self._connections[scope, viewer] += 1
        if self._connections[scope, viewer] == 1:
            self._viewers[scope] += 1

    def _exit(self, scope: str, viewer: str) -> None:
        self._connections[scope, viewer] -= 1
        if not self._connections[scope, viewer]:
            del self._connections[scope, viewer]
            self._viewers[scope] -= 1

    def _seen(self, seen: tuple[int, str], now: float) -> None:
        self._last_seen[seen] = now
        self._last_seen.move_to_end(seen)
        # Forget the oldest: those of viewers still in their hall are never asked about (a
        # viewer there makes no visit), and leaving writes them anew.
        while self._last_seen:
            oldest, when = next(iter(self._last_seen.items()))
            if now - when < VISIT_WINDOW:
                break
            del self._last_seen[oldest]

    def watch_dashboard(self, sid: str) -> None:
        """Count a connection into this process's audience for a dashboard (not a viewer)."""
        with self._lock:
            self._dashboards.add(sid)
        self._start()

    def disconnect(self, sid: str) -> list[int]:
        """Take a closed connection out of every hall and dashboard; return those halls.

        A client that vanishes without a goodbye comes here too: Engine.IO's ping timeout calls
        the disconnect handler.
        """
        with self._lock:
            self._dashboards.discard(sid)
            hall_ids = list(self._halls.get(sid, {}))
        for hall_id in hall_ids:
            self.leave(sid, hall_id=hall_id)
        return hall_ids

    def halls_of(self, sid: str) -> dict[int, int]:
        """The halls a connection watches, each with its fair."""
        with self._lock:
            return dict(self._halls.get(sid, {}))

    # Reading.

    def figures(self, hall_id: int, fair_id: int, *, recent: bool = False
                ) -> tuple[Figures, Figures]:
        """The hall's figures and its fair's, across every process.

        With `recent`, what other processes and the database said within the last window
        will do: thousands of viewers joining at once then cost no query each.
        """
        hall_key, fair_key = hall_scope(hall_id), fair_scope(fair_id)
        now = time.monotonic()
        cached = self._recent.get(hall_id) if recent else None
        if cached is not None and now - cached[0] < self.window:
            shared, stored = cached[1], cached[2]
        else:
            shared = self._others([hall_key, fair_key])
            stored = _stored_figures(hall_id, fair_id)
            self._recent[hall_id] = (now, shared, stored)
        stored_hall, stored_fair_visits, stored_fair_peak = stored
        with self._lock:
            result = []
            for key, visits, peak in ((hall_key, stored_hall[0], stored_hall[1]),
                                      (fair_key, stored_fair_visits, stored_fair_peak)):
                self._others_seen[key] = shared.viewers.get(key, 0)
                viewers = self._viewers[key] + self._others_seen[key]
                # Remember the highest count seen, for the next write to the database.
                if viewers > self._peaks.get(key, 0):
                    self._peaks[key] = viewers
                result.append(Figures(
                    viewers=viewers,
                    visits=visits + self._pending_visits[key] + shared.pending_visits.get(key, 0),
                    peak_viewers=max(peak, viewers, self._peaks.get(key, 0),
                                     shared.peaks.get(key, 0)),
                ))
        return result[0], result[1]

    def viewers_message(self, hall_id: int, fair_id: int) -> ViewersPayload:
        """The `viewers` message of a hall."""
        hall_figures, fair_figures = self.figures(hall_id, fair_id)
        return {"hall_id": hall_id, "fair_id": fair_id, **hall_figures.as_payload(),
                "fair": fair_figures.as_payload()}

    # The ticker.

    def tick(self) -> None:
        """Send the figures of every changed hall (once a window at most), fit the broadcast
        window to this process's audience (hall viewers and dashboards), and publish."""
        now = self.clock()
        with self._lock:
            due = {hall_id for hall_id in self._dirty
                   if self._next_figures.get(hall_id, 0) <= now}
            self._dirty -= due
        for hall_id in sorted(due):
            payload = self.viewers_message(hall_id, self._fair_of[hall_id])
            self._next_figures[hall_id] = now + max(
                self.window, payload["viewers"] / VIEWERS_PER_SECOND)
            broadcast.viewers_changed(payload)
        with self._lock:
            audience = len(self._halls.keys() | self._dashboards)
        broadcast.set_audience(audience)
        if time.monotonic() - self._last_flush >= self.flush_every:
            self.flush()
        else:
            self._publish()

    def flush(self) -> None:
        """Write pending visits and peaks to the database, then publish."""
        self._last_flush = time.monotonic()
        with self._lock:
            visits = +self._pending_visits
            peaks = {key: peak for key, peak in self._peaks.items() if peak > 0}
        if visits or peaks:
            try:
                _write_figures(visits, peaks)
            except Exception:
                # The figures stay pending and the next flush tries again.
                logger.exception("Could not write viewer figures to the database.")
                db.session.rollback()
            else:
                self._recent.clear()  # the database now holds what was pending
                with self._lock:
                    self._pending_visits.subtract(visits)
                    for key, peak in peaks.items():
                        if self._peaks.get(key) == peak:
                            del self._peaks[key]
        self._publish()

    def stop(self) -> None:
        """Write what is pending and take this process's record out of the shared store."""
        with self._lock:
            idle = self._idle_locked()
        if idle and not self._published:
            return
        with self.app.app_context():
            self.flush()
        try:
            self.store.withdraw()
        except redis.RedisError:
            logger.warning("Could not withdraw this process's viewers from Redis.")

    def _others(self, scopes: list[str]) -> Shared:
        try:
            shared = self.store.others(scopes)
        except redis.RedisError as error:
            self._failing(error)
            return Shared({}, {}, {})
        return shared

    def _publish(self) -> None:
        with self._lock:
            viewers = {key: count for key, count in self._viewers.items() if count}
            pending = +self._pending_visits
            peaks = dict(self._peaks)
        if not (viewers or pending or peaks or self._published):
            return
        try:
            self.store.publish(viewers, pending, peaks)
        except redis.RedisError as error:
            self._failing(error)
            return
        self._published = bool(viewers or pending or peaks)
        if self._store_failing:
            self._store_failing = False
            logger.warning("Redis answers again; this process's viewers are published.")
            self._recovered()

    def live_processes(self) -> int | None:
        """Server processes with viewers, as the shared store lists them; None without one."""
        return self.store.live_processes() if isinstance(self.store, RedisStore) else None

    def _recovered(self) -> None:
        """Redis is back: once Socket.IO listens again, resend the totals our viewers watch."""
        with self._lock:
            fair_ids = {fair_id for halls in self._halls.values() for fair_id in halls.values()}
        if fair_ids:
            socketio.start_background_task(resend_totals, self.app, fair_ids)

    def _failing(self, error: Exception) -> None:
        if not self._store_failing:
            self._store_failing = True
            logger.error("Redis is unreachable (%s); counting this process's viewers only "
                         "and retrying every %.0f s.", error, self.window)

    def _idle_halls(self) -> bool:
        with self._lock:
            return not self._halls

    def _idle_locked(self) -> bool:
        return not (self._halls or self._dashboards or self._dirty or +self._pending_visits
                    or self._peaks)

    def _start(self) -> None:
        with self._lock:
            if self._running or not self.autotick:
                return
            self._running = True
        socketio.start_background_task(self._run)

    def _run(self) -> None:
        # Runs while this process has viewers or unsaved figures; the next join restarts it.
        while True:
            socketio.sleep(self.window)
            try:
                with self.app.app_context():
                    self.tick()
                    if self._idle_halls():
                        self.flush()
            except Exception:
                logger.exception("The presence ticker failed; it carries on.")
            with self._lock:
                if self._idle_locked():
                    self._running = False
                    return


StoredFigures = tuple[tuple[int, int], int, int]


def _stored_figures(hall_id: int, fair_id: int) -> StoredFigures:
    """(hall visits, hall peak), fair visits and fair peak as the database has them."""
    hall_row = db.session.execute(
        select(Hall.visits, Hall.peak_viewers).where(Hall.id == hall_id)
    ).one()
    fair_visits = db.session.scalar(
        select(func.coalesce(func.sum(Hall.visits), 0)).where(Hall.fair_id == fair_id)
    )
    fair_peak = db.session.scalar(
        select(FairAudience.peak_viewers).where(FairAudience.fair_id == fair_id)
    )
    return (hall_row.visits, hall_row.peak_viewers), int(fair_visits or 0), fair_peak or 0


@use_case()
def _write_figures(visits: Mapping[str, int], peaks: Mapping[str, int]) -> None:
    """Add visits and raise peaks; concurrent processes only ever add or raise."""
    for key in sorted(set(visits) | set(peaks)):
        kind, _, number = key.partition(":")
        added, peak = visits.get(key, 0), peaks.get(key, 0)
        if kind == "hall":
            db.session.execute(
                update(Hall).where(Hall.id == int(number)).values(
                    visits=Hall.visits + added,
                    peak_viewers=case((Hall.peak_viewers < peak, peak),
                                      else_=Hall.peak_viewers),
                )
            )
        elif peak:
            raised = db.session.execute(
                update(FairAudience).where(FairAudience.fair_id == int(number)).values(
                    peak_viewers=case((FairAudience.peak_viewers < peak, peak),
                                      else_=FairAudience.peak_viewers),
                )
            )
            if raised.rowcount == 0:
                # The fair's first figures. Should another process insert it at the same
                # moment, this transaction fails and the figures wait for the next flush.
                db.session.add(FairAudience(fair_id=int(number), peak_viewers=peak))


_live_presences: weakref.WeakSet[Presence] = weakref.WeakSet()


@atexit.register
def _stop_before_exit() -> None:
    """A server process that stops keeps its visits and takes its viewers out at once."""
    for live in list(_live_presences):
        try:
            live.stop()
        except Exception:
            logger.exception("Could not save the viewer figures before exit.")


def resend_totals(app: Flask, fair_ids: Iterable[int], *, timeout: float = 120) -> None:
    """After a Redis outage, send the latest totals of these fairs once this process listens.

    Messages published while Redis was down are lost for the other processes' viewers; a fair
    that had no new intent since would keep showing old totals. Each process that saw the
    outage tells every process to send these fairs' totals again, read afresh, so every viewer
    is back on the latest snapshot (clients ignore a seq they already have).
    """
    deadline = time.monotonic() + timeout
    with app.app_context():
        while not health.listening():
            if time.monotonic() > deadline:
                logger.error("This process is still not subscribed to the Socket.IO queue "
                             "%.0f s after Redis came back.", timeout)
                return
            socketio.sleep(1)
        # Nothing was written, so nothing waits for a commit: the news leaves at once.
        for fair_id in sorted(set(fair_ids)):
            broadcast.totals_changed(fair_id)
        logger.warning("Subscribed again after a Redis outage; sent the latest totals of "
                       "fairs %s.", sorted(set(fair_ids)))


def current() -> Presence:
    """The presence of the current app."""
    found: Presence = current_app.extensions[EXTENSION_KEY]
    return found


def init_app(app: Flask) -> None:
    """Count viewers in process, or in Redis when ``REDIS_URL`` is set."""
    url = app.config.get("REDIS_URL")
    # Every key of presence starts with the deployment's prefix (REDIS_PREFIX).
    prefix = f"{app.config['REDIS_PREFIX']}:presence"
    store: Store = RedisStore(url, prefix=prefix) if url else LocalStore()
    app.extensions[EXTENSION_KEY] = Presence(app, store)
