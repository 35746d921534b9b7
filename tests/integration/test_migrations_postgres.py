"""Migrations run up and down on PostgreSQL, and the models match what they build."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from fair import create_app
from fair.extensions import db
from tests.conftest import base_config

pytestmark = pytest.mark.integration


def test_migrations_go_up_down_and_up_again_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    config = base_config(tmp_path, tmp_path / "unused.sqlite")
    config["SQLALCHEMY_DATABASE_URI"] = postgres_url
    app = create_app(config)
    with app.app_context():
        upgrade()
        assert "projects" in inspect(db.engine).get_table_names()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert differences == []
        db.engine.dispose()
