"""`flask fair create-organiser`."""

from __future__ import annotations

from flask.testing import FlaskCliRunner

from fair.accounts import service as account_service
from fair.accounts.models import Role


def test_create_organiser_makes_one_that_can_sign_in(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["fair", "create-organiser", "boss@fair.example",
                                 "--password", "organiser-secret"])
    assert result.exit_code == 0, result.output
    user = account_service.authenticate("boss@fair.example", "organiser-secret")
    assert user.role is Role.organiser


def test_create_organiser_refuses_a_short_password(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["fair", "create-organiser", "boss@fair.example",
                                 "--password", "short"])
    assert result.exit_code != 0
    assert account_service.find_user("boss@fair.example") is None
