"""Migrations run up and down on SQLite, and the models match what they build."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, update

from deals import service as deal_service
from deals import totals as deal_totals
from deals.models import Intent
from exhibitors.models import Project
from fair import create_app
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
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


def test_0007_counts_the_intents_secured_before_it(
    app: Flask, fair: Fair, make_project: Callable[..., Project], make_user: Callable[..., User],
) -> None:
    fair_id = fair.id
    project = make_project(fair)
    buyer = make_user(Role.buyer)
    intents = [deal_service.record_intent(project.id, buyer=buyer, amount_fen=amount,
                                          idempotency_key=f"key-{amount}")
               for amount in (100_00, 250_00, 400_00)]
    deal_service.withdraw_intent(intents[2], buyer=buyer)
    db.session.execute(update(Intent).where(Intent.id.in_([intents[1].id, intents[2].id]))
                       .values(secured=True))
    db.session.commit()
    db.session.remove()

    downgrade(revision="0006")
    assert "secured_count" not in {column["name"] for column in
                                   inspect(db.engine).get_columns("fair_totals")}
    upgrade()

    totals = deal_totals.read_totals(fair_id)
    # Only the active one: the withdrawn intent left the totals.
    assert (totals["secured_amount"], totals["secured_count"]) == ("250.00", 1)
    assert (totals["amount"], totals["seq"]) == ("350.00", 4)
