"""Health of this server process: its database, Redis, and its Socket.IO queue subscription."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import redis
from sqlalchemy import text

from fair.extensions import db, socketio


class QueueHealth(TypedDict):
    #: "redis" with REDIS_URL, "none" in the embedded deployment (one process, no queue).
    kind: str
    channel: str | None
    #: Redis lists this process's listening connection as subscribed to the channel; None
    #: before the first client connects (Socket.IO starts listening then), or without Redis.
    subscribed: bool | None
    #: PUBSUB NUMSUB of the channel: every server process should be one of them.
    subscribers: int | None
    #: Server processes with viewers, as the caller counts them (each must be subscribed).
    processes: int | None


class Health(TypedDict):
    ok: bool
    database: str
    redis: str
    queue: QueueHealth


def check(*, processes: Callable[[], int | None]) -> Health:
    """Ask the database and Redis; `ok` only when everything this process needs answers.

    A process whose Redis subscription silently died still serves pages and accepts sockets,
    but its viewers hear nothing another process sends (python-socketio issue #1581, fixed in
    5.16.3: the listener now catches every error and subscribes again). So Redis itself is
    asked whether the connection this process listens on is subscribed. `processes` counts the
    server processes with viewers (livehalls.presence), with Redis at hand.
    """
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
        queue["processes"] = processes()
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

