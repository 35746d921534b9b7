"""POST /stripe/webhook: only signed, fresh events; each applied once, in any order."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from deals import payments
from deals.models import Intent, Payment, PaymentPurpose, PaymentStatus, StripeEvent
from exhibitors.models import Project
from fair.accounts.models import User
from fair.extensions import db
from tests.deals.stripe_fake import STRIPE_SETTINGS, FakeStripe, event_payload, signature_header

SECRET = STRIPE_SETTINGS["STRIPE_WEBHOOK_SECRET"]


def post(client: FlaskClient, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post("/stripe/webhook", data=body, headers=headers)


def signed(client: FlaskClient, body: bytes) -> Any:
    return post(client, body, signature_header(body, SECRET))


@pytest.fixture
def payment(fake_stripe: FakeStripe, project: Project, buyer: User,
            sign: Callable[..., Intent]) -> Payment:
    """A deposit whose PaymentIntent Stripe has created and confirmed."""
    intent = sign(project, buyer, 1_000_000)
    checkout = payments.pay_deposit(intent, buyer=buyer, payment_method="pm_card_visa",
                                    idempotency_key="webhook-test")
    return checkout.payment


def succeeded(fake_stripe: FakeStripe, payment: Payment, **changes: Any) -> dict[str, Any]:
    return {**fake_stripe.intents[payment.payment_intent or ""], **changes}


def refunded_charge(fake_stripe: FakeStripe, payment: Payment) -> dict[str, Any]:
    return {**fake_stripe.charge_of(payment.payment_intent or ""), "refunded": True}


def state(payment: Payment) -> tuple[PaymentStatus, bool]:
    db.session.expire_all()
    intent = db.session.get(Intent, payment.intent_id)
    assert intent is not None
    return payment.status, intent.secured


def events() -> int:
    return db.session.scalar(select(func.count()).select_from(StripeEvent)) or 0


def test_a_signed_success_secures_the_intent(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    body = event_payload("payment_intent.succeeded", succeeded(fake_stripe, payment))
    answered = signed(client, body)
    assert answered.status_code == 200
    assert answered.json["applied"] is True
    assert state(payment) == (PaymentStatus.succeeded, True)
    assert events() == 1


def test_the_same_event_three_times_is_applied_once(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    body = event_payload("payment_intent.succeeded", succeeded(fake_stripe, payment))
    answers = [signed(client, body) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [answer.json["applied"] for answer in answers] == [True, False, False]
    # Refunded in between: a late copy of the success must not undo it.
    signed(client, event_payload("charge.refunded", refunded_charge(fake_stripe, payment)))
    assert signed(client, body).json["applied"] is False
    assert state(payment) == (PaymentStatus.refunded, False)
    assert events() == 2


def test_events_out_of_order_never_move_a_payment_backwards(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    # Stripe reports the refund before the success it undoes, then an old failure.
    signed(client, event_payload("charge.refunded", refunded_charge(fake_stripe, payment)))
    assert state(payment) == (PaymentStatus.refunded, False)
    signed(client, event_payload("payment_intent.succeeded", succeeded(fake_stripe, payment)))
    signed(client, event_payload("payment_intent.payment_failed",
                                 succeeded(fake_stripe, payment, status="requires_payment_method")))
    assert state(payment) == (PaymentStatus.refunded, False)
    assert events() == 3


def test_a_late_failure_does_not_undo_a_success(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    signed(client, event_payload("payment_intent.succeeded", succeeded(fake_stripe, payment)))
    signed(client, event_payload("payment_intent.payment_failed", succeeded(
        fake_stripe, payment, last_payment_error={"message": "Your card was declined."})))
    assert state(payment) == (PaymentStatus.succeeded, True)
    db.session.expire_all()
    assert payment.failure_message is None


def test_a_success_after_a_failure_is_taken(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    signed(client, event_payload("payment_intent.payment_failed", succeeded(
        fake_stripe, payment, last_payment_error={"message": "Authentication failed."})))
    assert state(payment) == (PaymentStatus.failed, False)
    db.session.expire_all()
    assert payment.failure_message == "Authentication failed."
    signed(client, event_payload("payment_intent.succeeded", succeeded(fake_stripe, payment)))
    assert state(payment) == (PaymentStatus.succeeded, True)


@pytest.mark.parametrize("signature", [
    None,
    "",
    "t=1,v1=0000",
    "garbage",
])
def test_unsigned_or_forged_events_get_400_and_change_nothing(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment, signature: str | None
) -> None:
    body = event_payload("payment_intent.succeeded", succeeded(fake_stripe, payment))
    refused = post(client, body, signature)
    assert refused.status_code == 400
    assert refused.json["error"]["code"] == "bad_signature"
    assert state(payment) == (PaymentStatus.pending, False)
    assert events() == 0


def test_an_event_signed_with_another_secret_gets_400(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    body = event_payload("payment_intent.succeeded", succeeded(fake_stripe, payment))
    assert post(client, body, signature_header(body, "whsec_forged")).status_code == 400
    assert state(payment) == (PaymentStatus.pending, False)


def test_a_tampered_body_gets_400(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    body = event_payload("payment_intent.succeeded", succeeded(fake_stripe, payment))
    signature = signature_header(body, SECRET)
    tampered = body.replace(b'"amount": 100000', b'"amount": 1')
    assert tampered != body
    assert post(client, tampered, signature).status_code == 400
    assert events() == 0


def test_a_stale_event_gets_400(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    body = event_payload("payment_intent.succeeded", succeeded(fake_stripe, payment))
    old = signature_header(body, SECRET, timestamp=int(time.time()) - 3600)
    assert post(client, body, old).status_code == 400
    assert state(payment) == (PaymentStatus.pending, False)


def test_a_signed_body_that_is_not_json_gets_400(client: FlaskClient,
                                                  fake_stripe: FakeStripe) -> None:
    assert signed(client, b"not json").status_code == 400


def test_without_a_webhook_secret_the_webhook_is_unavailable(client: FlaskClient) -> None:
    body = event_payload("payment_intent.succeeded", {"id": "pi_1"})
    answered = post(client, body, signature_header(body, SECRET))
    assert answered.status_code == 503
    assert answered.json["error"]["code"] == "payments_unavailable"


def test_events_of_other_payments_are_recorded_and_ignored(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    other = {"id": "pi_someone_else", "amount": 100, "currency": "cny", "metadata": {}}
    assert signed(client, event_payload("payment_intent.succeeded", other)).status_code == 200
    assert signed(client, event_payload("customer.created", {"id": "cus_1"})).status_code == 200
    assert state(payment) == (PaymentStatus.pending, False)
    assert events() == 2


def test_a_success_for_another_amount_is_not_applied(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    signed(client, event_payload("payment_intent.succeeded",
                                 succeeded(fake_stripe, payment, amount=1)))
    assert state(payment) == (PaymentStatus.pending, False)


def test_a_payment_intent_whose_id_was_never_stored_is_found_by_its_metadata(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    # As if the process had died between creating the PaymentIntent and storing its id.
    body = event_payload("payment_intent.succeeded", succeeded(fake_stripe, payment))
    payment_intent = payment.payment_intent
    payment.payment_intent = None
    db.session.commit()
    signed(client, body)
    db.session.expire_all()
    assert payment.payment_intent == payment_intent
    assert state(payment) == (PaymentStatus.succeeded, True)


def test_an_orphan_payment_intent_of_a_retry_is_not_applied(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    orphan = succeeded(fake_stripe, payment, id="pi_orphan")
    signed(client, event_payload("payment_intent.succeeded", orphan))
    assert state(payment) == (PaymentStatus.pending, False)


def test_the_event_id_and_its_effect_commit_together(
    app: Flask, client: FlaskClient, fake_stripe: FakeStripe, payment: Payment,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    body = event_payload("payment_intent.succeeded", succeeded(fake_stripe, payment))

    def crash(payment: Payment) -> None:
        raise RuntimeError("the process died half-way")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr(payments, "_settle_deposit", crash)
    assert signed(client, body).status_code == 500  # Stripe will send it again
    assert events() == 0
    assert state(payment) == (PaymentStatus.pending, False)
    monkeypatch.undo()
    assert signed(client, body).json["applied"] is True
    assert state(payment) == (PaymentStatus.succeeded, True)


def test_a_booth_fee_event_marks_the_exhibitor_paid_and_a_refund_unmarks_it(
    client: FlaskClient, fake_stripe: FakeStripe, fair: Any, organiser: User,
    make_exhibitor: Callable[..., Any]
) -> None:
    from fair import service as fair_service

    fair_service.update_fair(fair, organiser=organiser, changes={"booth_fee_fen": 20_000})
    exhibitor, user = make_exhibitor(fair)
    fee = payments.pay_booth_fee(fair, user=user, payment_method="pm_card_visa",
                                 idempotency_key="fee").payment
    assert fee.purpose is PaymentPurpose.booth_fee
    signed(client, event_payload("payment_intent.succeeded", succeeded(fake_stripe, fee)))
    db.session.expire_all()
    assert exhibitor.booth_fee_paid
    signed(client, event_payload("charge.refunded", refunded_charge(fake_stripe, fee)))
    db.session.expire_all()
    assert not exhibitor.booth_fee_paid
    assert fee.status is PaymentStatus.refunded


def test_a_partial_refund_changes_nothing(
    client: FlaskClient, fake_stripe: FakeStripe, payment: Payment
) -> None:
    signed(client, event_payload("payment_intent.succeeded", succeeded(fake_stripe, payment)))
    partial = {**fake_stripe.charge_of(payment.payment_intent or ""), "refunded": False}
    signed(client, event_payload("charge.refunded", partial))
    assert state(payment) == (PaymentStatus.succeeded, True)
