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


def test_demo_command_builds_the_reference_scale_once(runner: FlaskCliRunner) -> None:
    first = runner.invoke(args=["fair", "demo"])

    assert first.exit_code == 0, first.output
    assert "317 approved exhibitors" in first.output
    assert "890 published projects, 3 halls" in first.output
    assert "organiser@fair.example / organiser-demo" in first.output

    second = runner.invoke(args=["fair", "demo"])
    assert second.exit_code == 0, second.output
    assert "nothing was changed" in second.output
