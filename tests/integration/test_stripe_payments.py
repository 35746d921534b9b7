"""Payments against localstripe: a real server process, real HTTP to Stripe, signed webhooks.

The fair runs as gunicorn with the STRIPE_* settings pointing at localstripe; localstripe
delivers its events to the server's /stripe/webhook. The test's own app shares the database
and asks localstripe directly where a test needs Stripe's side of the story.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskCliRunner
from huey.storage import RedisStorage
from sqlalchemy import select

from deals import service as deal_service
from deals.models import Intent, PaymentStatus, StripeEvent
from exhibitors.models import Exhibitor, Project
from fair import service as fair_service
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from tests.deals.stripe_fake import signature_header
from tests.localstripe import DELIVERY_DELAY, PUBLISHABLE_KEY, LocalStripe
from tests.serving import Server, consume, serve

pytestmark = pytest.mark.integration

VISA = "4242424242424242"
#: localstripe's card that asks for 3-D Secure.
THREE_D_SECURE = "4000002500003155"
Headers = Callable[[User], dict[str, str]]


@pytest.fixture
def stripe_app(app: Flask, localstripe: LocalStripe) -> Flask:
    """The test's app talks to the same localstripe as the server."""
    app.config.update(localstripe.settings)
    return app


@pytest.fixture
def database_file(stripe_app: Flask) -> Path:
    return Path(stripe_app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))


@pytest.fixture
def server(database_file: Path, localstripe: LocalStripe, tmp_path: Path) -> Iterator[Server]:
    """The fair as gunicorn beside a consumer of its tasks (on the embedded SQLite queue),
    configured for localstripe, which sends it the webhooks."""
    with (
        serve(database_file, log=tmp_path / "server.log",
              environment=localstripe.settings) as running,
        consume(database_file, log=tmp_path / "consumer.log", environment=localstripe.settings),
    ):
        localstripe.register_webhook(f"{running.url}/stripe/webhook")
        yield running


@pytest.fixture
def buyer(make_user: Callable[..., User]) -> User:
    return make_user(Role.buyer, province="CN-CQ")


@pytest.fixture
def intent(fair: Fair, make_project: Callable[..., Project], buyer: User) -> Intent:
    return deal_service.record_intent(make_project(fair).id, buyer=buyer, amount_fen=50_000_00,
                                      idempotency_key="intent")


class Buyer:
    """A buyer's browser, reduced to its HTTP calls: the fair's API and Stripe.js's."""

    def __init__(self, server: Server, localstripe: LocalStripe, headers: dict[str, str]):
        self.server, self.localstripe, self.headers = server, localstripe, headers

    def get(self, path: str) -> dict[str, Any]:
        answer = requests.get(f"{self.server.url}{path}", headers=self.headers, timeout=10)
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    def post(self, path: str, body: dict[str, Any] | None = None, *,
             key: str | None = None) -> requests.Response:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return requests.post(f"{self.server.url}{path}", json=body, headers=headers, timeout=30)

    def save_card(self, number: str = VISA) -> str:
        """What Stripe.js confirmCardSetup does with the card element's five inputs."""
        setup = self.post("/api/v1/payments/setup").json()
        assert setup["publishable_key"] == PUBLISHABLE_KEY
        seti = setup["client_secret"].split("_secret_")[0]
        confirmed = requests.post(
            f"{self.localstripe.url}/v1/setup_intents/{seti}/confirm",
            data=json.dumps({
                "key": setup["publishable_key"], "use_stripe_sdk": True,
                "client_secret": setup["client_secret"],
                "payment_method_data": {
                    "type": "card",
                    "card": {"number": number, "exp_month": "12", "exp_year": "2034",
                             "cvc": "123"},
                    "billing_details": {"address": {"postal_code": "610000"}},
                },
            }), timeout=10)
        assert confirmed.status_code == 200, confirmed.text
        payment_method: str = confirmed.json()["payment_method"]
        return payment_method

    def pay_deposit(self, intent: Intent, *, card: str = VISA, key: str = "deposit") -> Any:
        paid = self.post(f"/api/v1/deals/{intent.id}/deposit",
                         {"payment_method": self.save_card(card)}, key=key)
        assert paid.status_code == 201, paid.text
        return paid.json()

    def finish_3d_secure(self, client_secret: str) -> None:
        """What Stripe.js confirmCardPayment does when the payer completes 3-D Secure."""
        pi = client_secret.split("_secret_")[0]
        answer = requests.post(
            f"{self.localstripe.url}/v1/payment_intents/{pi}/_authenticate?success=true",
            data=json.dumps({"key": PUBLISHABLE_KEY, "client_secret": client_secret}),
            timeout=10)
        assert answer.status_code == 200, answer.text


@pytest.fixture
def buyer_browser(server: Server, localstripe: LocalStripe, buyer: User,
                  token_for: Headers) -> Buyer:
    return Buyer(server, localstripe, token_for(buyer))


def wait_for(check: Callable[[], Any], *, timeout: float = 15) -> Any:
    """Poll until `check` answers something true (webhooks arrive a second or so later)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_a_deposit_succeeds_end_to_end_through_the_signed_webhook(
    buyer_browser: Buyer, localstripe: LocalStripe, intent: Intent, fair: Fair
) -> None:
    paid = buyer_browser.pay_deposit(intent)
    assert paid["status"] == "pending"
    assert paid["amount"] == "5000.00"
    deal = f"/api/v1/deals/{intent.id}"
    assert wait_for(lambda: buyer_browser.get(deal)["secured"]) is True
    assert buyer_browser.get(f"/api/v1/payments/{paid['id']}")["status"] == "succeeded"
    remote = localstripe.api("GET", f"/v1/payment_intents/{paid['payment_intent']}")
    assert remote["status"] == "succeeded"
    assert (remote["amount"], remote["currency"]) == (500_000, "cny")
    assert remote["metadata"] == {"payment": str(paid["id"]), "fair": str(fair.id),
                                  "intent": str(intent.id), "purpose": "deposit"}
    assert localstripe.deliveries("payment_intent.succeeded") == 1


def test_3d_secure_is_finished_on_the_page_and_confirmed_by_the_webhook(
    buyer_browser: Buyer, intent: Intent
) -> None:
    asked = buyer_browser.pay_deposit(intent, card=THREE_D_SECURE)
    assert asked["requires_action"] is True
    time.sleep(DELIVERY_DELAY * 2)
    assert buyer_browser.get(f"/api/v1/deals/{intent.id}")["secured"] is False
    buyer_browser.finish_3d_secure(asked["client_secret"])
    assert wait_for(lambda: buyer_browser.get(f"/api/v1/deals/{intent.id}")["secured"]) is True


def test_the_same_event_delivered_three_times_is_applied_once(
    buyer_browser: Buyer, localstripe: LocalStripe, server: Server, intent: Intent,
    stripe_app: Flask
) -> None:
    # Three registrations of the same endpoint: localstripe sends every event three times.
    for copy in ("copy-1", "copy-2"):
        localstripe.register_webhook(f"{server.url}/stripe/webhook", name=copy)
    try:
        paid = buyer_browser.pay_deposit(intent)
        assert wait_for(lambda: localstripe.deliveries("payment_intent.succeeded") == 3)
    finally:
        for copy in ("copy-1", "copy-2"):  # later tests' servers are elsewhere
            localstripe.register_webhook("http://127.0.0.1:9/gone", name=copy)
    assert buyer_browser.get(f"/api/v1/payments/{paid['id']}")["status"] == "succeeded"
    assert buyer_browser.get(f"/api/v1/deals/{intent.id}")["secured"] is True
    events = localstripe.api("GET", "/v1/events?type=payment_intent.succeeded")["data"]
    assert len(events) == 1  # one event, three deliveries
    db.session.expire_all()
    assert db.session.scalars(
        select(StripeEvent.id).where(StripeEvent.type == "payment_intent.succeeded")
    ).all() == [events[0]["id"]]


def test_a_success_arriving_after_the_withdrawal_is_refunded(
    buyer_browser: Buyer, localstripe: LocalStripe, intent: Intent
) -> None:
    # Stripe's success is late: the buyer withdrew the intent before it arrived.
    localstripe.register_webhook("http://127.0.0.1:9/not-yet")
    paid = buyer_browser.pay_deposit(intent)
    assert buyer_browser.post(f"/api/v1/deals/{intent.id}/withdraw").status_code == 200
    event = localstripe.api("GET", "/v1/events?type=payment_intent.succeeded")["data"][0]
    body = json.dumps(event).encode()
    delivered = requests.post(f"{buyer_browser.server.url}/stripe/webhook", data=body, headers={
        "Stripe-Signature": signature_header(body, localstripe.settings["STRIPE_WEBHOOK_SECRET"]),
        "Content-Type": "application/json"}, timeout=30)
    assert delivered.status_code == 200
    # The consumer sends the refund the webhook decided.
    assert wait_for(lambda: buyer_browser.get(f"/api/v1/payments/{paid['id']}")["status"]
                    == "refunded")
    assert buyer_browser.get(f"/api/v1/deals/{intent.id}")["secured"] is False
    refunds = localstripe.api("GET", f"/v1/refunds?payment_intent={paid['payment_intent']}")
    assert [refund["amount"] for refund in refunds["data"]] == [500_000]


def test_a_forged_delivery_is_refused_and_changes_nothing(
    buyer_browser: Buyer, localstripe: LocalStripe, server: Server, intent: Intent
) -> None:
    localstripe.register_webhook(f"{server.url}/stripe/webhook", secret="whsec_forged")
    paid = buyer_browser.pay_deposit(intent)
    assert wait_for(lambda: localstripe.deliveries("payment_intent.succeeded", status="400"))
    assert buyer_browser.get(f"/api/v1/payments/{paid['id']}")["status"] == "pending"
    assert buyer_browser.get(f"/api/v1/deals/{intent.id}")["secured"] is False


def test_withdrawing_a_secured_intent_refunds_its_deposit_through_stripe(
    buyer_browser: Buyer, localstripe: LocalStripe, intent: Intent, runner: FlaskCliRunner,
    stripe_app: Flask
) -> None:
    paid = buyer_browser.pay_deposit(intent)
    assert wait_for(lambda: buyer_browser.get(f"/api/v1/deals/{intent.id}")["secured"])
    withdrawn = buyer_browser.post(f"/api/v1/deals/{intent.id}/withdraw")
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    assert wait_for(lambda: buyer_browser.get(f"/api/v1/payments/{paid['id']}")["status"]
                    == "refunded")
    assert buyer_browser.get(f"/api/v1/deals/{intent.id}")["secured"] is False
    refunds = localstripe.api("GET", f"/v1/refunds?payment_intent={paid['payment_intent']}")
    assert [refund["amount"] for refund in refunds["data"]] == [500_000]
    charge = localstripe.api("GET", f"/v1/payment_intents/{paid['payment_intent']}")
    assert charge["latest_charge"]["refunded"] is True
    agreed = runner.invoke(args=["fair", "reconcile-payments"])
    assert agreed.exit_code == 0, agreed.output


def test_reconciliation_finds_a_payment_whose_webhook_never_came(
    buyer_browser: Buyer, localstripe: LocalStripe, intent: Intent, runner: FlaskCliRunner,
    stripe_app: Flask
) -> None:
    localstripe.register_webhook("http://127.0.0.1:9/lost")
    paid = buyer_browser.pay_deposit(intent)
    time.sleep(DELIVERY_DELAY * 2)
    found = runner.invoke(args=["fair", "reconcile-payments"])
    assert found.exit_code == 1
    assert found.output.splitlines() == [
        f"payment {paid['id']} / {paid['payment_intent']}: pending here, succeeded at Stripe"
    ]


def test_an_exhibitor_pays_the_booth_fee(
    server: Server, localstripe: LocalStripe, fair: Fair, organiser: User,
    make_exhibitor: Callable[..., tuple[Exhibitor, User]], token_for: Headers,
    stripe_app: Flask
) -> None:
    fair_service.update_fair(fair, organiser=organiser, changes={"booth_fee_fen": 880_000})
    exhibitor, user = make_exhibitor(fair)
    portal = Buyer(server, localstripe, token_for(user))
    paid = portal.post(f"/api/v1/fairs/{fair.id}/booth-fee",
                       {"payment_method": portal.save_card()}, key="booth")
    assert paid.status_code == 201, paid.text
    assert paid.json()["amount"] == "8800.00"
    payment = f"/api/v1/payments/{paid.json()['id']}"
    assert wait_for(lambda: portal.get(payment)["status"] == PaymentStatus.succeeded.value)
    db.session.expire_all()
    assert exhibitor.booth_fee_paid


def test_two_consumer_processes_on_one_redis_queue_send_each_refund_once(
    database_file: Path, localstripe: LocalStripe, redis_url: str, tmp_path: Path, fair: Fair,
    make_project: Callable[..., Project], make_user: Callable[..., User], token_for: Headers
) -> None:
    # The scaled deployment: the queue in Redis (under this test's REDIS_PREFIX).
    settings = localstripe.settings
    project = make_project(fair)
    with serve(database_file, log=tmp_path / "server.log", redis_url=redis_url,
               environment=settings) as server:
        localstripe.register_webhook(f"{server.url}/stripe/webhook")
        paid = []
        for number in range(8):
            buyer = make_user(Role.buyer)
            intent = deal_service.record_intent(project.id, buyer=buyer, amount_fen=50_000_00,
                                                idempotency_key=f"intent-{number}")
            browser = Buyer(server, localstripe, token_for(buyer))
            paid.append((browser, intent, browser.pay_deposit(intent)))
        for browser, intent, _ in paid:
            assert wait_for(lambda: browser.get(f"/api/v1/deals/{intent.id}")["secured"])  # noqa: B023 - called at once
            assert browser.post(f"/api/v1/deals/{intent.id}/withdraw").status_code == 200
        # Queued in Redis, not sent: both consumers start with every refund due, and each
        # queues its minute's sweep as it starts.
        queue = RedisStorage(f"{os.environ['REDIS_PREFIX']}:tasks", url=redis_url)
        assert queue.queue_size() == 8
        with consume(database_file, log=tmp_path / "consumer.log", redis_url=redis_url,
                     environment=settings, count=2):
            assert wait_for(lambda: all(
                browser.get(f"/api/v1/payments/{payment['id']}")["status"] == "refunded"
                for browser, _, payment in paid) and queue.queue_size() == 0)

    for _, _, payment in paid:
        refunds = localstripe.api("GET", f"/v1/refunds?payment_intent={payment['payment_intent']}")
        assert [refund["amount"] for refund in refunds["data"]] == [500_000]
    queue.flush_all()
