"""Health of this server process: its database, Redis, and its Socket.IO queue subscription.

A process whose Redis subscription silently died still serves pages and accepts sockets, but
its viewers hear nothing another process sends (python-socketio issue #1581, fixed in 5.16.3:
the listener now catches every error and subscribes again). This makes such a process visible:
Redis itself is asked whether the connection this process listens on is subscribed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, TypedDict

import redis
from flask import Flask
from sqlalchemy import text

from fair.extensions import db, socketio
from livehalls import broadcast, presence

logger = logging.getLogger(__name__)


class QueueHealth(TypedDict):
    #: "redis" with REDIS_URL, "none" in the embedded deployment (one process, no queue).
    kind: str
    channel: str | None
    #: Redis lists this process's listening connection as subscribed to the channel; None
    #: before the first client connects (Socket.IO starts listening then), or without Redis.
    subscribed: bool | None
    #: PUBSUB NUMSUB of the channel: every server process should be one of them.
    subscribers: int | None
    #: Server processes with viewers, from livehalls.presence (each must be subscribed).
    processes: int | None


class Health(TypedDict):
    ok: bool
    database: str
    redis: str
    queue: QueueHealth


def check() -> Health:
    """Ask the database and Redis; `ok` only when everything this process needs answers."""
    database = _check_database()
    manager: Any = socketio.server.manager
    url = getattr(manager, "redis_url", None)
    if url is None:
        queue: QueueHealth = {"kind": "none", "channel": None, "subscribed": None,
                              "subscribers": None, "processes": None}
        return {"ok": database == "ok", "database": database, "redis": "off", "queue": queue}
    queue = {"kind": "redis", "channel": manager.channel, "subscribed": False,
             "subscribers": None, "processes": None}
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
        queue["subscribers"] = int(dict(client.pubsub_numsub(manager.channel))
                                   .get(manager.channel.encode(), 0))
        if socketio.server.manager_initialized:
            queue["subscribed"] = _listening(client, manager)
        else:
            queue["subscribed"] = None
        store = presence.tracker().store
        if isinstance(store, presence.RedisStore):
            queue["processes"] = store.live_processes()
        redis_state = "ok"
    except redis.RedisError as error:
        redis_state = f"error: {error}"
    finally:
        client.close()
    ok = database == "ok" and redis_state == "ok" and queue["subscribed"] is not False
    return {"ok": ok, "database": database, "redis": redis_state, "queue": queue}


def _check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as error:
        db.session.rollback()
        return f"error: {type(error).__name__}"
    return "ok"


def _listening(client: redis.Redis, manager: Any) -> bool:
    """Whether Redis counts this process's listening connection among the subscribers."""
    pubsub = getattr(manager, "pubsub", None)
    connection = getattr(pubsub, "connection", None)
    sock = getattr(connection, "_sock", None)
    if sock is None:
        return False
    try:
        host, port = sock.getsockname()[:2]
    except OSError:
        return False
    for entry in client.client_list(_type="pubsub"):
        if entry.get("addr") == f"{host}:{port}":
            return int(entry.get("sub", 0)) > 0
    return False


def listening() -> bool:
    """Whether this process's Socket.IO queue listener is subscribed (always, without Redis)."""
    manager: Any = socketio.server.manager
    url = getattr(manager, "redis_url", None)
    if url is None or not socketio.server.manager_initialized:
        return True
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return _listening(client, manager)
    except redis.RedisError:
        return False
    finally:
        client.close()


def resend_totals(app: Flask, fair_ids: Iterable[int], *, timeout: float = 120) -> None:
    """After a Redis outage, send the latest totals of these fairs once this process listens.

    Messages published while Redis was down are lost for the other processes' viewers; a fair
    that had no new intent since would keep showing old totals. Each process that saw the
    outage tells every process to send these fairs' totals again, read afresh, so every viewer
    is back on the latest snapshot (clients ignore a seq they already have).
    """
    deadline = time.monotonic() + timeout
    with app.app_context():
        while not listening():
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
