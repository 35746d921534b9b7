"""`flask --app wsgi fair ...`: thin wrappers over plain functions."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from fair.accounts import service as account_service

fair_cli = AppGroup("fair", help="Operate the fair.")


@fair_cli.command("create-organiser")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", default="主办方")
def create_organiser_command(email: str, password: str, name: str) -> None:
    """Create an organiser (or reset an organiser's password)."""
    user = account_service.create_organiser(email=email, password=password, name=name)
    click.echo(f"Organiser {user.email} is ready.")
