"""`flask --app wsgi fair ...`: thin wrappers over plain functions."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from deals import payments
from fair import demo
from fair.accounts import service as account_service
from fair.errors import FairError

fair_cli = AppGroup("fair", help="Operate the fair.")


@fair_cli.command("create-organiser")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", default="主办方")
def create_organiser_command(email: str, password: str, name: str) -> None:
    """Create an organiser (or reset an organiser's password)."""
    user = account_service.create_organiser(email=email, password=password, name=name)
    click.echo(f"Organiser {user.email} is ready.")


@fair_cli.command("demo")
def demo_command() -> None:
    """Build the demo fair at the reference event's scale (safe to run again)."""
    started = time.perf_counter()
    built = demo.build_demo_fair(media_root=Path(current_app.config["MEDIA_ROOT"]))
    if not built.created:
        click.echo(f"The demo fair 「{built.fair.name}」 is already there (id {built.fair.id}); "
                   "nothing was changed.")
        return
    click.echo(
        f"Built the demo fair 「{built.fair.name}」 (id {built.fair.id}) in "
        f"{time.perf_counter() - started:.1f} s: {built.exhibitors} approved exhibitors from "
        f"{built.provinces} provinces, {built.projects} published projects, {built.halls} halls."
    )
    click.echo(f"Sign in as {demo.ORGANISER_EMAIL} / {demo.ORGANISER_PASSWORD} (organiser), "
               f"{demo.EXHIBITOR_EMAIL} / {demo.EXHIBITOR_PASSWORD} (exhibitor), "
               f"{demo.BUYER_EMAIL} / {demo.BUYER_PASSWORD} (buyer).")


@fair_cli.command("reconcile-payments")
def reconcile_payments_command() -> None:
    """Compare local payments with Stripe's PaymentIntents; exit 1 when any differ."""
    try:
        differences = payments.reconcile()
    except FairError as error:
        raise click.ClickException(_operator_text(error)) from error
    for difference in differences:
        click.echo(str(difference))
    if differences:
        raise click.exceptions.Exit(1)
    click.echo("Local payments and Stripe agree.")


@fair_cli.command("retry-refunds")
def retry_refunds_command() -> None:
    """Send every refund that was decided but not made; the task consumer does it every minute."""
    failed = 0
    try:
        results = payments.issue_requested_refunds()
    except FairError as error:
        raise click.ClickException(_operator_text(error)) from error
    for payment, error in results:
        click.echo(f"payment {payment.id}: {error or payment.status.value}")
        failed += error is not None
    if failed:
        raise click.exceptions.Exit(1)


def _operator_text(error: FairError) -> str:
    """What an operator reads: for payments that are off, which settings are missing."""
    if isinstance(error, payments.PaymentsUnavailable):
        reason = payments.settings(current_app.config).unavailable_reason
        if reason:
            return reason
    return str(error.message)
