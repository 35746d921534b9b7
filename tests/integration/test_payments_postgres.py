"""Payments on PostgreSQL, where deliveries really race: row locks and the event's primary key."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select

from deals import payments
from deals import service as deal_service
from deals import totals as deal_totals
from deals.models import Intent, Payment, PaymentStatus, StripeEvent
from exhibitors.models import Project
from fair import create_app
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from livehalls import broadcast
from tests.conftest import base_config
from tests.deals.stripe_fake import (
    STRIPE_SETTINGS,
    THREE_D_SECURE,
    FakeStripe,
    event_payload,
    signature_header,
)

pytestmark = pytest.mark.integration

DELIVERIES = 6


@pytest.fixture
def app(tmp_path: Path, postgres_url: str) -> Iterator[Flask]:
    config = base_config(tmp_path, tmp_path / "unused.sqlite")
    config.update(STRIPE_SETTINGS, SQLALCHEMY_DATABASE_URI=postgres_url)
    app = create_app(config)
    # No /live clients here: a flush in the background would read a database about to be dropped.
    app.extensions[broadcast.EXTENSION_KEY].autoflush = False
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def fake_stripe(app: Flask) -> FakeStripe:
    fake = FakeStripe()
    app.extensions[payments.CLIENT_KEY] = fake
    return fake


@pytest.fixture
def intent(fair: Fair, make_project: Callable[..., Project],
           make_user: Callable[..., User]) -> Intent:
    buyer = make_user(Role.buyer, province="CN-XZ")
    return deal_service.record_intent(make_project(fair).id, buyer=buyer, amount_fen=300_000_00,
                                      idempotency_key="pg")


def at_once(app: Flask, count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work` in `count` threads that start together, each with its own session."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(number: int) -> None:
        with app.app_context():
            start.wait()
            try:
                results[number] = work(number)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def deliver(app: Flask, body: bytes) -> Any:
    answer = app.test_client().post("/stripe/webhook", data=body, headers={
        "Stripe-Signature": signature_header(body, STRIPE_SETTINGS["STRIPE_WEBHOOK_SECRET"]),
        "Content-Type": "application/json"})
    return answer.status_code, answer.json


def test_simultaneous_deliveries_of_one_event_apply_it_once(
    app: Flask, fake_stripe: FakeStripe, intent: Intent
) -> None:
    payment = payments.pay_deposit(intent, buyer=db.session.get(User, intent.buyer_id),
                                   payment_method="pm_card_visa", idempotency_key="p").payment
    body = event_payload("payment_intent.succeeded",
                         fake_stripe.intents[payment.payment_intent or ""])
    answers = at_once(app, DELIVERIES, lambda _: deliver(app, body))
    assert [status for status, _ in answers] == [200] * DELIVERIES
    assert sorted(answer["applied"] for _, answer in answers) == [False] * (DELIVERIES - 1) + [True]
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(StripeEvent)) == 1
    assert payment.status is PaymentStatus.succeeded
    assert intent.secured
    totals = deal_totals.read_totals(intent.fair_id)
    assert (totals["seq"], totals["secured_amount"], totals["secured_count"]) == (
        2, "300000.00", 1)


def test_a_withdrawal_racing_the_success_ends_refunded(
    app: Flask, fake_stripe: FakeStripe, intent: Intent
) -> None:
    buyer = db.session.get(User, intent.buyer_id)
    checkout = payments.pay_deposit(intent, buyer=buyer, payment_method=THREE_D_SECURE,
                                    idempotency_key="race")
    body = event_payload("payment_intent.succeeded",
                         fake_stripe.succeed(checkout.payment.payment_intent or ""))
    intent_id, buyer_id = intent.id, intent.buyer_id

    def withdraw() -> Any:
        return deal_service.withdraw_intent(db.session.get(Intent, intent_id),
                                            buyer=db.session.get(User, buyer_id)).status

    answers = at_once(app, 2, lambda number: deliver(app, body) if number else withdraw())
    assert answers[1][0] == 200
    db.session.expire_all()
    payment = db.session.scalars(select(Payment)).one()
    # Whichever came first, the money goes back and the withdrawn intent is not secured.
    assert payment.status is PaymentStatus.refunded
    assert fake_stripe.count("refunds.create") == 1
    assert not intent.secured
    # Secured for a moment or never, it is out of the secured figures with the rest of it.
    totals = deal_totals.read_totals(intent.fair_id)
    assert (totals["amount"], totals["secured_amount"], totals["secured_count"]) == (
        "0.00", "0.00", 0)
