"""Configuration, built from the environment only."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_TRUE = {"1", "true", "yes", "on"}


def as_bool(value: str | None, default: bool = False) -> bool:
    """Read an environment flag."""
    if value is None:
        return default
    return value.strip().lower() in _TRUE


class ConfigError(RuntimeError):
    """A required setting is missing or malformed."""


def from_environ(environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables.

    The embedded default (no variables at all) is a SQLite file and media folder under
    ``instance/``; a production deployment must set ``SECRET_KEY`` (``FAIR_ENV=production``).
    """
    instance = Path(instance_path)
    production = environ.get("FAIR_ENV", "development") == "production"
    secret_key = environ.get("SECRET_KEY")
    if not secret_key:
        if production:
            raise ConfigError("SECRET_KEY must be set when FAIR_ENV=production")
        secret_key = _development_secret(instance)
    database_url = environ.get("DATABASE_URL") or f"sqlite:///{instance / 'fair.sqlite'}"
    return {
        "FAIR_ENV": "production" if production else "development",
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": environ.get("REDIS_URL") or None,
        # Every Redis key and channel of the deployment starts with it, so that several
        # deployments (or test runs) can share one Redis database.
        "REDIS_PREFIX": environ.get("REDIS_PREFIX") or "fair",
        # The unit tests only: run each background task as it is queued (fair.tasks).
        "TASKS_IMMEDIATE": False,
        "MEDIA_ROOT": environ.get("MEDIA_ROOT") or str(instance / "media"),
        "STRIPE_API_KEY": environ.get("STRIPE_API_KEY") or None,
        "STRIPE_PUBLISHABLE_KEY": environ.get("STRIPE_PUBLISHABLE_KEY") or None,
        "STRIPE_API_BASE": environ.get("STRIPE_API_BASE") or None,
        "STRIPE_JS_URL": environ.get("STRIPE_JS_URL") or "https://js.stripe.com/v3/",
        "STRIPE_WEBHOOK_SECRET": environ.get("STRIPE_WEBHOOK_SECRET") or None,
        "FAIR_LOCALE": environ.get("FAIR_LOCALE") or "zh",
        # The media server (livehalls.streaming), unset in the embedded default: where encoders
        # push (rtmp://host:1935/live), where its HLS is read (https://host/hls), and the folder
        # it records into, which this process reads to make replays.
        "STREAM_PUSH_URL": (environ.get("STREAM_PUSH_URL") or "").rstrip("/"),
        "STREAM_HLS_URL": (environ.get("STREAM_HLS_URL") or "").rstrip("/"),
        "STREAM_RECORDINGS": environ.get("STREAM_RECORDINGS") or "",
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_HTTPONLY": True,
        # Bodies (the pages' forms): upload views raise it for themselves, JSON is held to 64 KB
        # (fair.guard).
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SOCKETIO_ASYNC_MODE": environ.get("SOCKETIO_ASYNC_MODE") or None,
        "API_TITLE": "The fair",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        # Bearer tokens from POST /api/v1/auth/token; anonymous calls read what anyone may.
        "API_SPEC_OPTIONS": {
            "components": {"securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "a token from POST /api/v1/auth/token"}}},
            "security": [{"bearer": []}, {}],
        },
        "BABEL_DEFAULT_LOCALE": environ.get("FAIR_LOCALE") or "zh",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "WTF_CSRF_TIME_LIMIT": None,
        # Rate limits of fair.accounts.limits, in Flask-Limiter's notation.
        "SIGN_IN_ACCOUNT_LIMIT": environ.get("SIGN_IN_ACCOUNT_LIMIT") or "10 per 15 minutes",
        "SIGN_IN_ADDRESS_LIMIT": environ.get("SIGN_IN_ADDRESS_LIMIT") or "30 per 15 minutes",
        "REGISTER_ADDRESS_LIMIT": environ.get("REGISTER_ADDRESS_LIMIT") or "20 per hour",
        "RATELIMIT_HEADERS_ENABLED": True,
        # How many proxies (nginx) stand in front of the fair and set X-Forwarded-For: the
        # client address that rate limits count by is the one they saw.
        "TRUSTED_PROXIES": int(environ.get("FAIR_TRUSTED_PROXIES") or 0),
        # Origins besides the fair's own whose pages may open /live (comma-separated).
        "ALLOWED_ORIGINS": [origin.strip() for origin in
                            (environ.get("FAIR_ALLOWED_ORIGINS") or "").split(",")
                            if origin.strip()],
        # The audience (audience.recording): events wait in each process's buffer at most this
        # many seconds before they are written in one batch; 0 writes each at once (tests).
        "AUDIENCE_FLUSH_SECONDS": _number(environ.get("AUDIENCE_FLUSH_SECONDS"), 1.0),
        # Raw events older than this are deleted every night; their rollups stay.
        "AUDIENCE_RETENTION_DAYS": int(_number(environ.get("AUDIENCE_RETENTION_DAYS"), 180)),
    }


def _number(value: str | None, default: float) -> float:
    if value is None or not value.strip():
        return default
    try:
        return float(value)
    except ValueError as error:
        raise ConfigError(f"not a number: {value!r}") from error


def database_settings(database_url: str) -> tuple[str, dict[str, Any]]:
    """The SQLAlchemy URL (psycopg 3 for PostgreSQL) and engine options that suit it."""
    if database_url.startswith(("postgresql://", "postgres://")):
        # psycopg 3 is the driver; it cooperates with gevent.
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
    return database_url, _engine_options(database_url)


def _engine_options(database_url: str) -> dict[str, Any]:
    if database_url.startswith("sqlite"):
        # Concurrent readers while one writer commits; wait instead of failing on a lock.
        return {"connect_args": {"timeout": 30}}
    # Idle connections are pinged before use (fair.database.ping_idle_connections), not all.
    return {"pool_size": 10, "max_overflow": 20}


def _development_secret(instance: Path) -> str:
    """Keep one random secret per checkout so that sessions survive a restart."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(os.urandom(32).hex())
    return path.read_text().strip()
