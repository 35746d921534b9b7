"""Background work: the one task queue (huey), bound to the app, and how tasks are declared."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context
from huey import Huey, crontab
from huey.api import TaskWrapper
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from sqlalchemy.engine import make_url

__all__ = ["crontab", "huey", "init_app", "periodic_task", "task"]

P = ParamSpec("P")
R = TypeVar("R")

#: The queue. Its storage is set by ``init_app`` from the app's configuration; until then it
#: holds tasks in memory. A consumer is ``huey_consumer wsgi.huey``: importing ``wsgi`` builds
#: the app, which binds the queue to it.
huey = Huey("fair", results=False, storage_class=MemoryStorage)
#: The app a task runs in when nothing around it has one (a consumer): the last one bound.
_bound: dict[str, Flask] = {}


def init_app(app: Flask) -> None:
    """Give the queue its storage from the app's configuration, and run tasks in this app.

    - ``REDIS_URL`` set: Redis, under the deployment's ``REDIS_PREFIX``;
    - otherwise a SQLite file beside the SQLite database (``instance/fair.tasks.sqlite`` in the
      embedded default), or under ``instance/`` when the database is elsewhere;
    - ``TASKS_IMMEDIATE`` (the unit tests only): each task runs as it is queued, in memory, so
      that a test sees a use case's whole effect; the tests of each task also run it on real
      consumers (tests/deals/test_payments.py, tests/integration/test_stripe_payments.py).
    """
    redis_url = app.config["REDIS_URL"]
    if redis_url:
        huey.name = f"{app.config['REDIS_PREFIX']}:tasks"
        huey.storage_class, huey.storage_kwargs = RedisStorage, {"url": redis_url}
    else:
        huey.name = "fair"
        huey.storage_class = SqliteStorage
        huey.storage_kwargs = {"filename": str(_sqlite_file(app))}
    immediate = bool(app.config["TASKS_IMMEDIATE"])
    if huey.immediate == immediate:
        huey.storage = huey.create_storage()
    else:
        huey.immediate = immediate  # makes the storage that fits
    _bound["app"] = app


def _sqlite_file(app: Flask) -> Path:
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(str(url.database))
        return database.with_name(f"{database.stem}.tasks.sqlite")
    return Path(app.instance_path) / "fair.tasks.sqlite"


def _app() -> Flask:
    """The app a task runs in: the caller's when queued in immediate mode, else the bound one."""
    if has_app_context():
        found: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        return found
    if "app" not in _bound:
        raise RuntimeError("fair.tasks.init_app binds the queue to an app (create_app does).")
    return _bound["app"]


def _in_app_context(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # A context of its own: a fresh database session, never the caller's after its commit.
        with _app().app_context():
            return fn(*args, **kwargs)

    return wrapper


def task(*, retries: int = 0, retry_delay: int = 0, retry_backoff: float = 0,
         **options: Any) -> Callable[[Callable[..., Any]], TaskWrapper]:
    """Declare a task: calling it queues it; a consumer runs it in the app's context.

    Declare tasks beside the rules they run; ``create_app`` imports their modules
    (``register_tasks``) so that a consumer knows them all. Every task runs in an app context
    of its own (and so a database session of its own), and must be safe to run twice and on
    two consumers at once.
    """

    def declare(fn: Callable[..., Any]) -> TaskWrapper:
        wrapper: TaskWrapper = huey.task(retries=retries, retry_delay=retry_delay,
                                         retry_backoff=retry_backoff,
                                         **options)(_in_app_context(fn))
        return wrapper

    return declare


def periodic_task(schedule: Callable[[Any], bool], *, retries: int = 0, retry_delay: int = 0,
                  **options: Any) -> Callable[[Callable[..., Any]], TaskWrapper]:
    """Declare a task that every consumer queues on ``schedule`` (a ``crontab``)."""

    def declare(fn: Callable[..., Any]) -> TaskWrapper:
        wrapper: TaskWrapper = huey.periodic_task(schedule, retries=retries,
                                                  retry_delay=retry_delay,
                                                  **options)(_in_app_context(fn))
        return wrapper

    return declare
