"""The task queue: its storage from the configuration, and tasks in an app context of their own.

The refund tasks, with real consumers, are in tests/deals/test_payments.py; with Redis and
consumer processes in tests/integration/test_stripe_payments.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, current_app
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage

from fair import tasks
from fair.config import from_environ
from fair.extensions import db


@pytest.fixture
def recorded() -> Iterator[tuple[Any, list[tuple[Flask, object]]]]:
    """A task that records the app and the database session it ran with."""
    seen: list[tuple[Flask, object]] = []

    @tasks.task()
    def look_around() -> None:
        seen.append((current_app._get_current_object(), db.session()))  # type: ignore[attr-defined]

    yield look_around, seen
    look_around.unregister()


def bind(tmp_path: Path, **config: Any) -> Flask:
    """Bind the queue to an app configured as from_environ would, plus `config`."""
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(from_environ({}, app.instance_path), **config)
    tasks.init_app(app)
    return app


def test_the_embedded_default_queues_in_a_sqlite_file_beside_the_database(tmp_path: Path) -> None:
    bind(tmp_path)
    assert not tasks.huey.immediate
    assert isinstance(tasks.huey.storage, SqliteStorage)
    assert tasks.huey.storage.filename == str(tmp_path / "instance" / "fair.tasks.sqlite")
    assert (tmp_path / "instance" / "fair.tasks.sqlite").exists()


def test_beside_postgresql_the_queue_is_a_sqlite_file_under_instance(tmp_path: Path) -> None:
    bind(tmp_path, SQLALCHEMY_DATABASE_URI="postgresql://fair@db/fair")
    assert tasks.huey.storage.filename == str(tmp_path / "instance" / "fair.tasks.sqlite")


def test_with_redis_the_queue_is_in_redis_under_the_deployments_prefix(tmp_path: Path) -> None:
    bind(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0", REDIS_PREFIX="fair-b")
    assert isinstance(tasks.huey.storage, RedisStorage)
    assert tasks.huey.storage.queue_key == "huey.redis.fairbtasks"


def test_the_unit_tests_run_tasks_as_they_are_queued(app: Flask) -> None:
    assert tasks.huey.immediate
    assert isinstance(tasks.huey.storage, MemoryStorage)


def test_a_task_runs_in_an_app_context_and_session_of_its_own(
    app: Flask, recorded: tuple[Any, list[tuple[Flask, object]]]
) -> None:
    look_around, seen = recorded
    look_around()
    [(task_app, task_session)] = seen
    assert task_app is app
    assert task_session is not db.session()


def test_a_consumers_thread_runs_tasks_in_the_bound_app(
    app: Flask, recorded: tuple[Any, list[tuple[Flask, object]]]
) -> None:
    look_around, seen = recorded
    # A consumer's worker thread has no app context: the task gets the app the queue is bound to.
    worker = threading.Thread(target=look_around.call_local)
    worker.start()
    worker.join()
    assert [task_app for task_app, _ in seen] == [app]
