"""Pooled PostgreSQL connections: pinged before use only after sitting idle."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from fair import create_app
from fair import database as fair_database
from fair.config import database_settings
from fair.extensions import db
from tests.conftest import base_config
from tests.integration.conftest import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    url, options = database_settings(postgres_url)
    engine = create_engine(url, **options)
    yield engine
    engine.dispose()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return pid


def terminate(pid: int) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def count_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    pings: list[object] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_the_engine_options_leave_pinging_to_the_idle_check() -> None:
    _, options = database_settings("postgresql://fair@db/fair")
    assert "pool_pre_ping" not in options


def test_a_connection_in_steady_use_is_not_pinged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fair_database.ping_idle_connections(engine, after=60)
    pings = count_pings(engine, monkeypatch)
    first = backend_pid(engine)
    for _ in range(5):
        assert backend_pid(engine) == first
    assert pings == []


def test_an_idle_connection_killed_by_the_database_is_replaced_before_use(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fair_database.ping_idle_connections(engine, after=0.2)
    pings = count_pings(engine, monkeypatch)
    first = backend_pid(engine)
    terminate(first)
    time.sleep(0.3)

    second = backend_pid(engine)

    assert second != first
    assert len(pings) == 1


def test_without_the_idle_check_the_killed_connection_fails_the_request(engine: Engine) -> None:
    # What the idle check is for: the pool would hand out the dead connection.
    terminate(backend_pid(engine))
    with pytest.raises(OperationalError):
        backend_pid(engine)


def test_the_app_pings_its_idle_postgresql_connections(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fair_database, "PING_IDLE_AFTER", 0.2)
    app = create_app({**base_config(tmp_path, tmp_path / "unused.sqlite"),
                      "SQLALCHEMY_DATABASE_URI": postgres_url})
    with app.app_context():
        first = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.session.remove()
        terminate(first)
        time.sleep(0.3)

        second = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.session.remove()
        db.engine.dispose()

    assert second != first
