"""Payments through Stripe, against the in-memory fake.

The fair's settings, deposits, booth fees, idempotency, declines, 3-D Secure, refunds on
withdrawal, reconciliation, and the fair without Stripe.
"""

from __future__ import annotations

import datetime as dt
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_socketio.test_client import SocketIOTestClient
from huey import Huey
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from deals import payments
from deals import service as deal_service
from deals import totals as deal_totals
from deals.models import Intent, Payment, PaymentPurpose, PaymentStatus, StripeCustomer
from exhibitors import service as exhibitor_service
from exhibitors.models import Exhibitor, Project
from fair import service as fair_service
from fair import tasks
from fair.accounts.models import User
from fair.errors import Forbidden
from fair.extensions import db
from fair.models import Fair
from fair.money import MAX_CHARGE_FEN, MAX_DEAL_FEN
from livehalls import rooms
from livehalls.rooms import dashboard_room, fair_room
from tests.conftest import BroadcastRecorder
from tests.deals.stripe_fake import (
    DECLINED,
    STRIPE_SETTINGS,
    THREE_D_SECURE,
    VISA,
    FakeStripe,
    event_payload,
    signature_header,
)
from tests.pages import cookie_session

Headers = Callable[[User], dict[str, str]]


def deposit(client: FlaskClient, headers: dict[str, str], intent: Intent, *,
            key: str = "deposit-1", payment_method: str = VISA) -> Any:
    return client.post(f"/api/v1/deals/{intent.id}/deposit",
                       json={"payment_method": payment_method},
                       headers={**headers, "Idempotency-Key": key})


def deliver(client: FlaskClient, event_type: str, data: dict[str, Any]) -> Any:
    """Stripe's webhook, signed with the configured secret."""
    body = event_payload(event_type, data)
    return client.post("/stripe/webhook", data=body, headers={
        "Stripe-Signature": signature_header(body, STRIPE_SETTINGS["STRIPE_WEBHOOK_SECRET"]),
        "Content-Type": "application/json"})


def payment_row(payment_id: int) -> Payment:
    db.session.expire_all()
    payment = db.session.get(Payment, payment_id)
    assert payment is not None
    return payment


@pytest.fixture
def intent(project: Project, buyer: User, sign: Callable[..., Intent]) -> Intent:
    return sign(project, buyer, 1_200_000_00)


@pytest.fixture
def buyer_headers(buyer: User, token_for: Headers) -> dict[str, str]:
    return token_for(buyer)


# --- The fair's settings ---------------------------------------------------------------------


def test_organiser_sets_booth_fee_and_deposit_percent(
    client: FlaskClient, fair: Fair, organiser: User, token_for: Headers
) -> None:
    assert client.get(f"/api/v1/fairs/{fair.id}").json["booth_fee"] == "0.00"
    assert client.get(f"/api/v1/fairs/{fair.id}").json["deposit_percent"] == 10
    changed = client.patch(f"/api/v1/fairs/{fair.id}", headers=token_for(organiser),
                           json={"booth_fee": "1500.50", "deposit_percent": 20,
                                 "booth_fee_required": True})
    assert changed.status_code == 200, changed.json
    assert (changed.json["booth_fee"], changed.json["deposit_percent"],
            changed.json["booth_fee_required"]) == ("1500.50", 20, True)
    db.session.expire_all()
    assert (fair.booth_fee_fen, fair.deposit_percent) == (150_050, 20)
    cleared = client.patch(f"/api/v1/fairs/{fair.id}", headers=token_for(organiser),
                           json={"booth_fee": "0.00"})
    assert cleared.json["booth_fee"] == "0.00"


@pytest.mark.parametrize("changes", [
    {"booth_fee": "-1.00"},
    {"booth_fee": "1000000.00"},
    {"booth_fee": 1500},
    {"booth_fee": "15.001"},
    {"deposit_percent": 0},
    {"deposit_percent": 101},
    {"deposit_percent": "10"},
])
def test_bad_payment_settings_are_refused(
    client: FlaskClient, fair: Fair, organiser: User, token_for: Headers, changes: dict[str, Any]
) -> None:
    refused = client.patch(f"/api/v1/fairs/{fair.id}", headers=token_for(organiser), json=changes)
    assert refused.status_code == 422
    assert set(refused.json["error"]["fields"]) == set(changes)


def test_only_organisers_set_the_booth_fee(
    client: FlaskClient, fair: Fair, buyer: User, token_for: Headers
) -> None:
    refused = client.patch(f"/api/v1/fairs/{fair.id}", headers=token_for(buyer),
                           json={"booth_fee": "100.00"})
    assert refused.status_code == 403


# --- Without Stripe ----------------------------------------------------------------------------


def test_without_stripe_payments_answer_503_and_change_nothing(
    client: FlaskClient, intent: Intent, buyer_headers: dict[str, str]
) -> None:
    setup = client.post("/api/v1/payments/setup", headers=buyer_headers)
    assert setup.status_code == 503
    assert setup.json["error"]["code"] == "payments_unavailable"
    assert setup.json["error"]["message"] == "在线支付尚未开通，暂时不能在线付款。"
    english = client.post("/api/v1/payments/setup",
                          headers={**buyer_headers, "Accept-Language": "en-GB,en;q=0.8"})
    assert english.json["error"]["message"] == "Online payment is not open yet."
    assert deposit(client, buyer_headers, intent).status_code == 503
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 0


def test_the_fair_still_records_intents_without_stripe(
    client: FlaskClient, project: Project, buyer_headers: dict[str, str]
) -> None:
    signed = client.post(f"/api/v1/projects/{project.id}/deals", json={"amount": "100.00"},
                         headers={**buyer_headers, "Idempotency-Key": "no-stripe"})
    assert signed.status_code == 201
    assert signed.json["secured"] is False


def test_settings_say_which_variables_are_missing(app: Flask) -> None:
    off = payments.settings(app.config)
    assert not off.available
    assert off.unavailable_reason == ("Payments are off: STRIPE_API_KEY, STRIPE_PUBLISHABLE_KEY, "
                                      "STRIPE_WEBHOOK_SECRET not configured.")
    assert payments.settings({**app.config, **STRIPE_SETTINGS}).available


# --- Card setup --------------------------------------------------------------------------------


def test_setup_gives_a_client_secret_on_the_users_one_customer(
    client: FlaskClient, fake_stripe: FakeStripe, buyer: User, buyer_headers: dict[str, str]
) -> None:
    first = client.post("/api/v1/payments/setup", headers=buyer_headers)
    second = client.post("/api/v1/payments/setup", headers=buyer_headers)
    assert first.status_code == 200
    assert first.json["client_secret"].startswith("seti_")
    assert first.json["publishable_key"] == STRIPE_SETTINGS["STRIPE_PUBLISHABLE_KEY"]
    assert first.json["client_secret"] != second.json["client_secret"]
    assert fake_stripe.count("customers.create") == 1
    customer = db.session.get(StripeCustomer, buyer.id)
    assert customer is not None
    assert {call[2]["customer"] for call in fake_stripe.calls
            if call[0] == "setup_intents.create"} == {customer.customer_id}


def test_setup_needs_a_signed_in_user(client: FlaskClient, fake_stripe: FakeStripe) -> None:
    assert client.post("/api/v1/payments/setup").status_code == 401


# --- Deposits ----------------------------------------------------------------------------------


def test_deposit_is_created_with_a_key_derived_from_the_committed_row(
    app: Flask, client: FlaskClient, fake_stripe: FakeStripe, fair: Fair, intent: Intent,
    buyer_headers: dict[str, str]
) -> None:
    committed: list[int] = []
    create = fake_stripe._payment_intents_create

    def create_after_commit(*, params: dict[str, Any], options: dict[str, Any]) -> Any:
        # Another connection sees only what was committed.
        with db.engine.connect() as other:
            committed.append(other.scalar(
                text("SELECT count(*) FROM payments WHERE id = :id"),
                {"id": int(params["metadata"]["payment"])}))
        return create(params=params, options=options)

    fake_stripe._payment_intents_create = create_after_commit  # type: ignore[method-assign]
    paid = deposit(client, buyer_headers, intent)
    assert paid.status_code == 201, paid.json
    assert committed == [1]
    assert paid.json["status"] == "pending"  # until Stripe's webhook says it succeeded
    assert paid.json["amount"] == "120000.00"  # 10 % of 1,200,000.00
    assert paid.json["purpose"] == "deposit"
    assert paid.json["requires_action"] is False
    created = next(call for call in fake_stripe.calls if call[0] == "payment_intents.create")
    assert created[3] == {"idempotency_key": f"payment-{paid.json['id']}"}
    assert created[2]["metadata"] == {"payment": str(paid.json["id"]), "fair": str(fair.id),
                                      "intent": str(intent.id), "purpose": "deposit"}
    assert (created[2]["amount"], created[2]["currency"]) == (12_000_000, "cny")
    assert paid.json["payment_intent"] in fake_stripe.intents
    assert payment_row(paid.json["id"]).payment_intent == paid.json["payment_intent"]


def test_the_same_idempotency_key_answers_with_the_same_payment_and_charges_once(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str]
) -> None:
    first = deposit(client, buyer_headers, intent, key="once")
    again = deposit(client, buyer_headers, intent, key="once")
    assert again.status_code == 201
    assert again.json["id"] == first.json["id"]
    assert fake_stripe.count("payment_intents.create") == 1
    assert fake_stripe.count("payment_intents.confirm") == 1
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1


def test_a_key_used_for_another_payment_is_refused(
    client: FlaskClient, fake_stripe: FakeStripe, project: Project, buyer: User,
    sign: Callable[..., Intent], buyer_headers: dict[str, str]
) -> None:
    first, second = sign(project, buyer, 100_000), sign(project, buyer, 200_000)
    assert deposit(client, buyer_headers, first, key="same").status_code == 201
    reused = deposit(client, buyer_headers, second, key="same")
    assert reused.status_code == 409
    assert reused.json["error"]["code"] == "idempotency_key_reused"


@pytest.mark.parametrize("key", [None, "", "x" * 101, "with space"])
def test_a_deposit_needs_a_valid_idempotency_key(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str],
    key: str | None
) -> None:
    headers = buyer_headers if key is None else {**buyer_headers, "Idempotency-Key": key}
    refused = client.post(f"/api/v1/deals/{intent.id}/deposit", json={"payment_method": VISA},
                          headers=headers)
    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "idempotency_key_invalid"


@pytest.mark.parametrize("body", [{}, {"payment_method": "card_123"}, {"payment_method": 5},
                                  {"payment_method": VISA, "amount": "1.00"}])
def test_a_deposit_needs_a_payment_method_and_nothing_else(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str],
    body: dict[str, Any]
) -> None:
    refused = client.post(f"/api/v1/deals/{intent.id}/deposit", json=body,
                          headers={**buyer_headers, "Idempotency-Key": "k"})
    assert refused.status_code == 422


def test_a_retry_resumes_a_payment_stripe_never_heard_of(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str]
) -> None:
    fake_stripe.unreachable = True
    failed = deposit(client, buyer_headers, intent, key="retry")
    assert failed.status_code == 502
    assert failed.json["error"]["code"] == "payment_provider_error"
    waiting = db.session.scalars(select(Payment)).one()
    assert (waiting.status, waiting.payment_intent) == (PaymentStatus.pending, None)
    fake_stripe.unreachable = False
    resumed = deposit(client, buyer_headers, intent, key="retry")
    assert resumed.status_code == 201
    assert resumed.json["id"] == waiting.id
    assert resumed.json["payment_intent"] is not None
    assert len(fake_stripe.intents) == 1


def test_a_declined_card_fails_the_payment(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str]
) -> None:
    declined = deposit(client, buyer_headers, intent, payment_method=DECLINED)
    assert declined.status_code == 201
    assert declined.json["status"] == "failed"
    assert declined.json["failure_message"] == "Your card was declined."
    db.session.expire_all()
    assert not intent.secured
    # A new attempt with another card is a new payment.
    assert deposit(client, buyer_headers, intent, key="second").json["status"] == "pending"


def test_three_d_secure_hands_the_client_secret_to_the_page(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str]
) -> None:
    asked = deposit(client, buyer_headers, intent, payment_method=THREE_D_SECURE)
    assert asked.status_code == 201
    assert asked.json["status"] == "pending"
    assert asked.json["requires_action"] is True
    assert asked.json["client_secret"] == f"{asked.json['payment_intent']}_secret_fake"
    again = deposit(client, buyer_headers, intent, payment_method=THREE_D_SECURE)
    assert again.json["client_secret"] == asked.json["client_secret"]


@pytest.mark.parametrize(("amount_fen", "percent", "expected"), [
    (1_200_000_00, 10, 120_000_00),
    (333, 10, 33),  # 33.3 fen, rounded half up
    (335, 10, 34),
    (1_000, 100, 1_000),
    (MAX_DEAL_FEN, 10, MAX_CHARGE_FEN),  # never above Stripe's largest charge
    (MAX_CHARGE_FEN, 100, MAX_CHARGE_FEN),
])
def test_the_deposit_is_the_fairs_share_capped_at_the_largest_charge(
    fair: Fair, amount_fen: int, percent: int, expected: int
) -> None:
    fair.deposit_percent = percent
    assert payments.deposit_fen(Intent(amount_fen=amount_fen), fair) == expected


def test_a_deposit_too_small_to_charge_is_refused(
    client: FlaskClient, fake_stripe: FakeStripe, project: Project, buyer: User,
    sign: Callable[..., Intent], buyer_headers: dict[str, str]
) -> None:
    refused = deposit(client, buyer_headers, sign(project, buyer, 4))
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "deposit_too_small"


def test_only_the_intents_buyer_pays_its_deposit(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, organiser: User,
    make_buyer: Callable[..., User], token_for: Headers
) -> None:
    assert deposit(client, token_for(make_buyer()), intent).status_code == 404
    refused = deposit(client, token_for(organiser), intent)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "not_yours"


def test_a_withdrawn_intent_takes_no_deposit(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer: User,
    buyer_headers: dict[str, str]
) -> None:
    deal_service.withdraw_intent(intent, buyer=buyer)
    refused = deposit(client, buyer_headers, intent)
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "intent_withdrawn"


def test_a_secured_intent_takes_no_second_deposit(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str]
) -> None:
    paid = deposit(client, buyer_headers, intent)
    deliver(client, "payment_intent.succeeded", fake_stripe.intents[paid.json["payment_intent"]])
    refused = deposit(client, buyer_headers, intent, key="another")
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "already_paid"


def test_a_paid_deposit_secures_the_deal(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str]
) -> None:
    paid = deposit(client, buyer_headers, intent)
    assert client.get(f"/api/v1/deals/{intent.id}", headers=buyer_headers).json["secured"] is False
    delivered = deliver(client, "payment_intent.succeeded",
                        fake_stripe.intents[paid.json["payment_intent"]])
    assert delivered.status_code == 200
    assert client.get(f"/api/v1/deals/{intent.id}", headers=buyer_headers).json["secured"] is True
    shown = client.get(f"/api/v1/payments/{paid.json['id']}", headers=buyer_headers)
    assert shown.json["status"] == "succeeded"


def test_two_deposits_paid_at_once_keep_one_and_refund_the_other(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str]
) -> None:
    first = deposit(client, buyer_headers, intent, key="tab-1")
    second = deposit(client, buyer_headers, intent, key="tab-2")
    for paid in (first, second):
        deliver(client, "payment_intent.succeeded",
                fake_stripe.intents[paid.json["payment_intent"]])
    assert payment_row(first.json["id"]).status is PaymentStatus.succeeded
    assert payment_row(second.json["id"]).status is PaymentStatus.refunded
    assert fake_stripe.charge_of(second.json["payment_intent"])["refunded"] is True
    db.session.expire_all()
    assert intent.secured


# --- The secured figures of the totals ---------------------------------------------------------


def secured_figures(fair_id: int) -> tuple[int, str, int]:
    totals = deal_totals.read_totals(fair_id)
    return totals["seq"], totals["secured_amount"], totals["secured_count"]


def test_a_paid_deposit_moves_the_secured_figures_on_an_open_dashboard(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str],
    organiser: User, token_for: Headers, live_client: Callable[..., SocketIOTestClient],
) -> None:
    dashboard = live_client({"token": token_for(organiser)["Authorization"][7:]})
    ack = dashboard.emit("join_dashboard", {"fair_id": intent.fair_id},
                         namespace=rooms.NAMESPACE, callback=True)
    assert (ack["totals"]["secured_amount"], ack["totals"]["secured_count"]) == ("0.00", 0)
    paid = deposit(client, buyer_headers, intent)

    deliver(client, "payment_intent.succeeded", fake_stripe.intents[paid.json["payment_intent"]])

    heard = heard_until(dashboard, seq=2)
    assert heard["secured"] == [{"fair_id": intent.fair_id, "deal_ids": [intent.id]}]
    totals = heard["totals"][-1]
    assert (totals["seq"], totals["secured_amount"], totals["secured_count"]) == (
        2, "1200000.00", 1)
    assert totals["amount"] == "1200000.00"
    again = dashboard.emit("join_dashboard", {"fair_id": intent.fair_id},
                           namespace=rooms.NAMESPACE, callback=True)
    assert [deal["secured"] for deal in again["deals"]] == [True]


def heard_until(live: SocketIOTestClient, *, seq: int) -> dict[str, list[Any]]:
    """What a client heard, by event, until the totals reach `seq` (five seconds at most)."""
    heard: dict[str, list[Any]] = {}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (
        heard.get("totals") and heard["totals"][-1]["seq"] >= seq
    ):
        for message in live.get_received(rooms.NAMESPACE):
            heard.setdefault(message["name"], []).append(message["args"][0])
        time.sleep(0.02)
    return heard


def test_a_paid_deposit_is_announced_after_its_commit_with_the_totals(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str],
    broadcasts: BroadcastRecorder,
) -> None:
    paid = deposit(client, buyer_headers, intent)
    with broadcasts.expect(3) as sent:
        deliver(client, "payment_intent.succeeded",
                fake_stripe.intents[paid.json["payment_intent"]])
    assert [message.event for message in sent] == ["secured", "totals", "totals"]
    assert sent[0].rooms == {fair_room(intent.fair_id), dashboard_room(intent.fair_id)}
    assert sent[1].payload == deal_totals.read_totals(intent.fair_id)
    # The same event again changes nothing and says nothing.
    with broadcasts.expect(0):
        deliver(client, "payment_intent.succeeded",
                fake_stripe.intents[paid.json["payment_intent"]])
    assert secured_figures(intent.fair_id) == (2, "1200000.00", 1)


def test_withdrawing_a_secured_intent_takes_it_out_of_the_secured_figures_in_one_change(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str],
    project: Project, buyer: User, sign: Callable[..., Intent],
) -> None:
    other = sign(project, buyer, 300_00)
    paid_deposit(client, fake_stripe, intent, buyer_headers)
    paid_deposit(client, fake_stripe, other, buyer_headers, key="deposit-2")
    assert secured_figures(intent.fair_id) == (4, "1200300.00", 2)

    client.post(f"/api/v1/deals/{intent.id}/withdraw", headers=buyer_headers)

    # One change (seq + 1); the refund that follows unsecures a withdrawn intent: no change.
    assert secured_figures(intent.fair_id) == (5, "300.00", 1)


def test_a_refund_of_an_active_intents_deposit_unsecures_it(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str],
) -> None:
    payment = paid_deposit(client, fake_stripe, intent, buyer_headers)
    charge = fake_stripe.charge_of(payment.payment_intent or "")
    deliver(client, "charge.refunded", {**charge, "refunded": True})
    assert secured_figures(intent.fair_id) == (3, "0.00", 0)
    db.session.expire_all()
    assert not intent.secured


# --- Seeing payments ---------------------------------------------------------------------------


def test_a_payment_is_seen_by_its_payer_and_organisers_only(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, organiser: User,
    make_buyer: Callable[..., User], token_for: Headers, buyer_headers: dict[str, str]
) -> None:
    payment_id = deposit(client, buyer_headers, intent).json["id"]
    url = f"/api/v1/payments/{payment_id}"
    assert client.get(url, headers=buyer_headers).json["amount"] == "120000.00"
    assert client.get(url, headers=token_for(organiser)).status_code == 200
    assert client.get(url, headers=token_for(make_buyer())).status_code == 404
    assert client.get(url).status_code == 401
    assert client.get("/api/v1/payments/999", headers=buyer_headers).status_code == 404


# --- Booth fees --------------------------------------------------------------------------------


@pytest.fixture
def fee_fair(fair: Fair, organiser: User) -> Fair:
    return fair_service.update_fair(fair, organiser=organiser,
                                    changes={"booth_fee_fen": 500_000})


def pay_fee(client: FlaskClient, headers: dict[str, str], fair: Fair, *, key: str = "fee-1"
            ) -> Any:
    return client.post(f"/api/v1/fairs/{fair.id}/booth-fee", json={"payment_method": VISA},
                       headers={**headers, "Idempotency-Key": key})


def test_an_approved_exhibitor_pays_the_booth_fee(
    client: FlaskClient, fake_stripe: FakeStripe, fee_fair: Fair,
    make_exhibitor: Callable[..., tuple[Exhibitor, User]], token_for: Headers
) -> None:
    exhibitor, user = make_exhibitor(fee_fair)
    paid = pay_fee(client, token_for(user), fee_fair)
    assert paid.status_code == 201, paid.json
    assert (paid.json["purpose"], paid.json["amount"]) == ("booth_fee", "5000.00")
    assert paid.json["exhibitor_id"] == exhibitor.id
    created = next(call for call in fake_stripe.calls if call[0] == "payment_intents.create")
    assert created[2]["metadata"]["exhibitor"] == str(exhibitor.id)
    deliver(client, "payment_intent.succeeded", fake_stripe.intents[paid.json["payment_intent"]])
    db.session.expire_all()
    assert exhibitor.booth_fee_paid
    again = pay_fee(client, token_for(user), fee_fair, key="fee-2")
    assert again.status_code == 409
    assert again.json["error"]["code"] == "already_paid"


def test_booth_fee_refusals(
    client: FlaskClient, fake_stripe: FakeStripe, fee_fair: Fair, buyer: User,
    make_fair: Callable[..., Fair], make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    token_for: Headers
) -> None:
    _, pending = make_exhibitor(fee_fair, approved=False)
    assert pay_fee(client, token_for(pending), fee_fair).json["error"]["code"] == "not_approved"
    assert pay_fee(client, token_for(buyer), fee_fair).status_code == 403
    free_fair = make_fair(name="免费展会")
    _, exhibitor = make_exhibitor(free_fair)
    refused = pay_fee(client, token_for(exhibitor), free_fair)
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "no_booth_fee"


def test_the_organiser_may_require_the_booth_fee_before_publishing(
    client: FlaskClient, fake_stripe: FakeStripe, fee_fair: Fair, organiser: User,
    make_exhibitor: Callable[..., tuple[Exhibitor, User]], make_project: Callable[..., Project],
    token_for: Headers
) -> None:
    _, user = make_exhibitor(fee_fair)
    project = make_project(fee_fair, user=user, publish=False)
    exhibitor_service.publish_project(project, user=user)  # not required yet
    fair_service.update_fair(fee_fair, organiser=organiser, changes={"booth_fee_required": True})
    draft = make_project(fee_fair, user=user, publish=False, title="第二个项目")
    with pytest.raises(Forbidden) as refused:
        exhibitor_service.publish_project(draft, user=user)
    assert refused.value.code == "booth_fee_unpaid"
    paid = pay_fee(client, token_for(user), fee_fair)
    deliver(client, "payment_intent.succeeded", fake_stripe.intents[paid.json["payment_intent"]])
    db.session.expire_all()
    assert exhibitor_service.publish_project(draft, user=user).is_published


# --- Refunds -----------------------------------------------------------------------------------


def paid_deposit(client: FlaskClient, fake_stripe: FakeStripe, intent: Intent,
                 headers: dict[str, str], *, key: str = "deposit-1") -> Payment:
    paid = deposit(client, headers, intent, key=key)
    deliver(client, "payment_intent.succeeded", fake_stripe.intents[paid.json["payment_intent"]])
    return payment_row(paid.json["id"])


def test_withdrawing_a_secured_intent_refunds_its_deposit(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str]
) -> None:
    payment = paid_deposit(client, fake_stripe, intent, buyer_headers)
    withdrawn = client.post(f"/api/v1/deals/{intent.id}/withdraw", headers=buyer_headers)
    assert withdrawn.status_code == 200
    refund = next(call for call in fake_stripe.calls if call[0] == "refunds.create")
    assert refund[2]["payment_intent"] == payment.payment_intent
    assert refund[3] == {"idempotency_key": f"refund-{payment.id}"}
    assert payment_row(payment.id).status is PaymentStatus.refunded
    assert client.get(f"/api/v1/deals/{intent.id}", headers=buyer_headers).json["secured"] is False


def test_a_refund_stripe_missed_is_kept_and_sent_again(
    client: FlaskClient, runner: FlaskCliRunner, fake_stripe: FakeStripe, intent: Intent,
    buyer_headers: dict[str, str]
) -> None:
    payment = paid_deposit(client, fake_stripe, intent, buyer_headers)
    fake_stripe.unreachable = True
    withdrawn = client.post(f"/api/v1/deals/{intent.id}/withdraw", headers=buyer_headers)
    assert withdrawn.status_code == 200  # the withdrawal stands; the refund waits
    waiting = payment_row(payment.id)
    assert waiting.status is PaymentStatus.succeeded
    assert waiting.refund_requested_at is not None
    assert client.get(f"/api/v1/payments/{payment.id}",
                      headers=buyer_headers).json["refund_requested"] is True
    still_down = runner.invoke(args=["fair", "retry-refunds"])
    assert still_down.exit_code == 1
    fake_stripe.unreachable = False
    sent = runner.invoke(args=["fair", "retry-refunds"])
    assert sent.exit_code == 0, sent.output
    assert f"payment {payment.id}: refunded" in sent.output
    assert payment_row(payment.id).status is PaymentStatus.refunded
    assert fake_stripe.charge_of(payment.payment_intent or "")["refunded"] is True


def test_a_refund_stripe_already_made_is_recorded(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer_headers: dict[str, str]
) -> None:
    payment = paid_deposit(client, fake_stripe, intent, buyer_headers)
    fake_stripe.charge_of(payment.payment_intent or "")["refunded"] = True
    client.post(f"/api/v1/deals/{intent.id}/withdraw", headers=buyer_headers)
    assert payment_row(payment.id).status is PaymentStatus.refunded


def test_a_deposit_paid_after_the_withdrawal_is_refunded(
    client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer: User,
    buyer_headers: dict[str, str]
) -> None:
    asked = deposit(client, buyer_headers, intent, payment_method=THREE_D_SECURE)
    deal_service.withdraw_intent(intent, buyer=buyer)
    deliver(client, "payment_intent.succeeded", fake_stripe.succeed(asked.json["payment_intent"]))
    assert payment_row(asked.json["id"]).status is PaymentStatus.refunded
    db.session.expire_all()
    assert not intent.secured


def test_a_rolled_back_withdrawal_sends_no_refund(
    app: Flask, client: FlaskClient, fake_stripe: FakeStripe, intent: Intent, buyer: User,
    buyer_headers: dict[str, str]
) -> None:
    payment = paid_deposit(client, fake_stripe, intent, buyer_headers)
    db.session.expire_all()
    payments.refund_deposits(intent)
    db.session.rollback()
    assert fake_stripe.count("refunds.create") == 0
    assert payment_row(payment.id).refund_requested_at is None


# --- Refunds in the background (deals.payments.send_refund, retry_refunds) ---------------------


@pytest.fixture
def queue(app: Flask) -> Huey:
    """The app's real queue (a SQLite file beside its database) instead of immediate mode."""
    app.config["TASKS_IMMEDIATE"] = False
    tasks.init_app(app)
    return tasks.huey


@contextmanager
def consumers(count: int, *, periodic: bool = True) -> Iterator[None]:
    """Run `count` real huey consumers (two worker threads each) on the queue, here."""
    # Consumer.start installs its signal handlers in the main thread: give the test run its own
    # back afterwards.
    saved = {number: signal.getsignal(number)
             for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    running = [tasks.huey.create_consumer(workers=2, periodic=periodic, initial_delay=0.02,
                                          max_delay=0.2) for _ in range(count)]
    try:
        for consumer in running:
            consumer.start()
        yield
    finally:
        for consumer in running:
            consumer.stop(graceful=True)
        for number, handler in saved.items():
            signal.signal(number, handler)


def wait_until(done: Callable[[], bool], *, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not done in time"
        time.sleep(0.05)


def refunded(payment_ids: list[int]) -> bool:
    db.session.expire_all()
    return all(payment_row(number).status is PaymentStatus.refunded for number in payment_ids)


def test_two_consumers_send_each_refund_once(
    client: FlaskClient, queue: Huey, fake_stripe: FakeStripe, project: Project,
    make_buyer: Callable[..., User], sign: Callable[..., Intent], token_for: Headers
) -> None:
    paid: list[tuple[Intent, User, Payment]] = []
    for _ in range(6):
        buyer = make_buyer()
        intent = sign(project, buyer, 1_000_000)
        paid.append((intent, buyer, paid_deposit(client, fake_stripe, intent, token_for(buyer))))
    for intent, buyer, _ in paid:
        deal_service.withdraw_intent(intent, buyer=buyer)
    # Queued after each commit, not sent: every refund is due when the consumers start, and
    # both consumers' minute sweeps (queued as they start) race the six queued sends.
    assert (queue.pending_count(), fake_stripe.count("refunds.create")) == (6, 0)

    payment_ids = [payment.id for _, _, payment in paid]
    with consumers(2):
        wait_until(lambda: refunded(payment_ids) and queue.pending_count() == 0)

    sent = Counter(call[2]["payment_intent"] for call in fake_stripe.calls
                   if call[0] == "refunds.create")
    assert sent == {payment.payment_intent: 1 for _, _, payment in paid}


def test_a_refund_decided_in_a_rolled_back_transaction_is_never_queued(
    client: FlaskClient, queue: Huey, fake_stripe: FakeStripe, project: Project,
    make_buyer: Callable[..., User], sign: Callable[..., Intent], token_for: Headers
) -> None:
    kept, dropped = [], []
    for chosen in (kept, dropped):
        buyer = make_buyer()
        intent = sign(project, buyer, 1_000_000)
        chosen += [intent, buyer, paid_deposit(client, fake_stripe, intent, token_for(buyer))]
    payments.refund_deposits(dropped[0])
    db.session.rollback()
    assert queue.pending_count() == 0
    deal_service.withdraw_intent(kept[0], buyer=kept[1])
    assert queue.pending_count() == 1

    with consumers(1):
        wait_until(lambda: refunded([kept[2].id]))

    assert [call[2]["payment_intent"] for call in fake_stripe.calls
            if call[0] == "refunds.create"] == [kept[2].payment_intent]
    assert payment_row(dropped[2].id).status is PaymentStatus.succeeded


def test_a_refund_stripe_refused_is_tried_again_later_by_the_queue(
    client: FlaskClient, queue: Huey, fake_stripe: FakeStripe, intent: Intent, buyer: User,
    buyer_headers: dict[str, str]
) -> None:
    payment = paid_deposit(client, fake_stripe, intent, buyer_headers)
    fake_stripe.unreachable = True
    deal_service.withdraw_intent(intent, buyer=buyer)
    started = dt.datetime.now(dt.UTC)
    with consumers(1, periodic=False):
        wait_until(lambda: queue.scheduled_count() == 1)

    [retry] = queue.scheduled()
    assert retry.args == (payment.id,)
    assert retry.retries == payments.send_refund.retries - 1
    assert retry.eta >= started.replace(tzinfo=None) + dt.timedelta(seconds=29)
    # The failed attempt gave its claim back: the retry (or the minute's sweep) may send it.
    assert payment_row(payment.id).refund_claimed_at is None
    assert payments.requested_refunds() == [payment.id]


# --- Reconciliation ----------------------------------------------------------------------------


def test_reconcile_reports_agreement(
    client: FlaskClient, runner: FlaskCliRunner, fake_stripe: FakeStripe, intent: Intent,
    buyer_headers: dict[str, str]
) -> None:
    paid_deposit(client, fake_stripe, intent, buyer_headers)
    result = runner.invoke(args=["fair", "reconcile-payments"])
    assert result.exit_code == 0, result.output
    assert "agree" in result.output


def test_reconcile_finds_each_kind_of_difference(
    client: FlaskClient, runner: FlaskCliRunner, fake_stripe: FakeStripe, project: Project,
    buyer: User, sign: Callable[..., Intent], buyer_headers: dict[str, str]
) -> None:
    missed = deposit(client, buyer_headers, sign(project, buyer, 100_000), key="a").json
    wrong = paid_deposit(client, fake_stripe, sign(project, buyer, 200_000), buyer_headers)
    fake_stripe.intents[wrong.payment_intent or ""]["amount"] = 1
    stray = fake_stripe.intents["pi_stray"] = {
        **fake_stripe.intents[missed["payment_intent"]], "id": "pi_stray",
        "metadata": {"payment": "999"}}
    fake_stripe.succeed(stray["id"])
    result = runner.invoke(args=["fair", "reconcile-payments"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert (f"payment {missed['id']} / {missed['payment_intent']}: "
            "pending here, succeeded at Stripe") in lines
    assert (f"payment {wrong.id} / {wrong.payment_intent}: "
            "amount 200.00 cny here, 0.01 cny at Stripe") in lines
    assert ("no payment / pi_stray: "
            "succeeded at Stripe for 100.00 cny (payment 999), unknown here") in lines


def test_reconcile_without_stripe_says_why(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["fair", "reconcile-payments"])
    assert result.exit_code == 1
    assert "STRIPE_API_KEY" in result.output


def test_a_payment_pays_for_one_thing(fair: Fair, buyer: User) -> None:
    db.session.add(Payment(purpose=PaymentPurpose.booth_fee, amount_fen=100, payer_id=buyer.id,
                           fair_id=fair.id, idempotency_key="k"))
    with pytest.raises(IntegrityError, match="pays_for_one_thing"):
        db.session.flush()
    db.session.rollback()


# --- Pages -------------------------------------------------------------------------------------


def sign_in(client: FlaskClient, user: User) -> None:
    cookie_session(client, user)


def test_without_stripe_the_intents_page_says_why_there_is_no_deposit_button(
    client: FlaskClient, intent: Intent, buyer: User
) -> None:
    sign_in(client, buyer)
    page = client.get("/my/intents").text
    assert "在线支付尚未开通" in page
    assert "card-payment" not in page
    assert "js.stripe.com" not in page


def test_the_intents_page_offers_the_deposit_on_unsecured_intents(
    app: Flask, client: FlaskClient, fake_stripe: FakeStripe, project: Project, buyer: User,
    sign: Callable[..., Intent], buyer_headers: dict[str, str]
) -> None:
    app.config["STRIPE_JS_URL"] = "https://stripe.example/v3/"
    open_intent = sign(project, buyer, 2_000_000)
    secured = sign(project, buyer, 3_000_000)
    paid = deposit(client, buyer_headers, secured)
    deliver(client, "payment_intent.succeeded", fake_stripe.intents[paid.json["payment_intent"]])
    sign_in(client, buyer)
    page = client.get("/my/intents").text
    assert 'data-publishable-key="pk_test_fair"' in page
    assert '<script src="https://stripe.example/v3/"></script>' in page
    assert f'value="/api/v1/deals/{open_intent.id}/deposit"' in page
    assert f'value="/api/v1/deals/{secured.id}/deposit"' not in page
    assert "意向金 2,000.00" in page  # 10 % of 20,000.00
    assert page.count("已付意向金") >= 1


def test_the_portal_offers_the_booth_fee_until_it_is_paid(
    client: FlaskClient, fake_stripe: FakeStripe, fee_fair: Fair,
    make_exhibitor: Callable[..., tuple[Exhibitor, User]], token_for: Headers
) -> None:
    _, user = make_exhibitor(fee_fair)
    headers = token_for(user)
    sign_in(client, user)
    page = client.get("/portal").text
    assert "5,000.00" in page
    assert f'value="/api/v1/fairs/{fee_fair.id}/booth-fee"' in page
    paid = pay_fee(client, headers, fee_fair)
    deliver(client, "payment_intent.succeeded", fake_stripe.intents[paid.json["payment_intent"]])
    after = client.get("/portal").text
    assert "已支付" in after
    assert "card-payment" not in after


def test_the_portal_without_stripe_says_why_there_is_no_booth_fee_button(
    client: FlaskClient, fee_fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]]
) -> None:
    _, user = make_exhibitor(fee_fair)
    sign_in(client, user)
    page = client.get("/portal").text
    assert "展位费" in page
    assert "在线支付尚未开通" in page
    english = client.get("/portal?lang=en").text
    assert "Booth fee" in english
    assert "Online payment is not open yet" in english
