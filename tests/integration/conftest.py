"""Services for integration tests: a fresh PostgreSQL database, Redis.

Locally a missing service skips these tests; with CI=true it fails them, so that a green CI
run always means they ran.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

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
