"""Services for integration tests: a fresh PostgreSQL database, Redis.

Locally a missing service skips these tests; with CI=true it fails them, so that a green CI
run always means they ran.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from fair import create_app
from fair.extensions import db
from tests.conftest import base_config

POSTGRES_ADMIN_URL = os.environ.get("FAIR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("FAIR_TEST_REDIS", "redis://127.0.0.1:6379/0")


def service_missing(name: str, error: Exception) -> None:
    """Fail in CI, skip elsewhere."""
    message = f"{name} is not reachable: {error}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A brand-new, empty PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"fair_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        service_missing("PostgreSQL", error)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    """The Redis server, checked to answer."""
    import redis

    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        service_missing("Redis", error)
    return REDIS_TEST_URL


@pytest.fixture
def redis_app(tmp_path: Path, migrated_database: Path, redis_url: str) -> Iterator[Flask]:
    """An app emitting through Redis, on the SQLite file that test servers serve too."""
    database_file = tmp_path / "fair.sqlite"
    shutil.copy(migrated_database, database_file)
    app = create_app({**base_config(tmp_path, database_file), "REDIS_URL": redis_url})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def postgres_app(tmp_path: Path, postgres_url: str) -> Iterator[Flask]:
    """An app on a fresh PostgreSQL database, migrated to the newest revision."""
    from flask_migrate import upgrade

    app = create_app({**base_config(tmp_path, tmp_path / "unused.sqlite"),
                      "SQLALCHEMY_DATABASE_URI": postgres_url})
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def database_file(app: Flask) -> Path:
    """The SQLite file behind the test's app, for servers started on the same data."""
    return Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
