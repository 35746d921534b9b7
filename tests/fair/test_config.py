"""Configuration comes from the environment only."""

from __future__ import annotations

from pathlib import Path

import pytest

from fair.config import ConfigError, database_settings, from_environ


def test_embedded_default_needs_no_variables(tmp_path: Path) -> None:
    config = from_environ({}, str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'fair.sqlite'}"
    assert config["MEDIA_ROOT"] == str(tmp_path / "media")
    assert config["REDIS_URL"] is None
    assert config["REDIS_PREFIX"] == "fair"
    assert config["TASKS_IMMEDIATE"] is False
    assert config["FAIR_LOCALE"] == "zh"
    assert config["SECRET_KEY"] == from_environ({}, str(tmp_path))["SECRET_KEY"]


def test_production_without_a_secret_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        from_environ({"FAIR_ENV": "production"}, str(tmp_path))


def test_variables_are_read(tmp_path: Path) -> None:
    config = from_environ(
        {"SECRET_KEY": "s", "REDIS_URL": "redis://r:6379/0", "MEDIA_ROOT": "/srv/media",
         "FAIR_LOCALE": "en", "STRIPE_API_KEY": "sk_test_x", "REDIS_PREFIX": "fair-b"},
        str(tmp_path),
    )
    assert config["REDIS_PREFIX"] == "fair-b"
    assert (config["SECRET_KEY"], config["REDIS_URL"], config["MEDIA_ROOT"]) == (
        "s", "redis://r:6379/0", "/srv/media")
    assert config["FAIR_LOCALE"] == "en"
    assert config["STRIPE_API_KEY"] == "sk_test_x"


def test_postgresql_urls_use_psycopg_3() -> None:
    url, options = database_settings("postgresql://fair@db/fair")
    assert url == "postgresql+psycopg://fair@db/fair"
    assert options["pool_size"] == 10
