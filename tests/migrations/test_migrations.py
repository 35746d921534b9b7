"""Migrations run up and down on SQLite, and the models match what they build."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from fair import create_app
from fair.extensions import db
from tests.conftest import base_config


def test_migrations_go_up_down_and_up_again_on_sqlite(tmp_path: Path) -> None:
    app = create_app(base_config(tmp_path, tmp_path / "migrations.sqlite"))
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"users", "fairs", "exhibitors", "projects", "project_terms", "media",
                "halls"} <= tables
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert differences == []
        db.engine.dispose()
