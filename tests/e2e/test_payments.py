"""A buyer pays the deposit on an intent in Chromium, through localstripe's Stripe.js.

localstripe's card element is five plain inputs (number, exp_month, exp_year, cvc,
postal_code) where real Stripe.js draws an iframe; the rest of the path is the real one:
SetupIntent and confirmCardSetup in the page, the PaymentIntent on the server, and Stripe's
signed webhook to the live server that marks the intent secured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Locator, expect
from sqlalchemy import select

from deals import service as deal_service
from deals.models import Payment, PaymentStatus
from exhibitors.models import Exhibitor, Project
from fair import service as fair_service
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from tests.localstripe import LocalStripe
from tests.serving import Server, serve

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SignedIn = Callable[[BrowserContext, User], None]


@pytest.fixture
def live_server(app: Flask, localstripe: LocalStripe, tmp_path: Path) -> Iterator[Server]:
    """The fair with Stripe configured to localstripe, which sends it the webhooks."""
    database_file = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    with serve(database_file, log=tmp_path / "server.log",
               media_root=Path(app.config["MEDIA_ROOT"]),
               environment=localstripe.settings) as server:
        localstripe.register_webhook(f"{server.url}/stripe/webhook")
        yield server


def fill_card(form: Locator, *, number: str, expires: tuple[str, str], cvc: str,
              postal_code: str) -> None:
    """Type a card into localstripe's card element, one input per field."""
    card = form.locator(".card-element")
    month, year = expires
    for field, value in (("number", number), ("exp_month", month), ("exp_year", year),
                         ("cvc", cvc), ("postal_code", postal_code)):
        card.get_by_placeholder(field, exact=True).fill(value)


def test_a_buyer_pays_a_deposit_with_a_card_and_sees_the_intent_secured(
    context: BrowserContext, signed_in: SignedIn, fair: Fair,
    make_project: Callable[..., Project], make_user: Callable[..., User], artifacts: Path
) -> None:
    buyer = make_user(Role.buyer, province="CN-CQ")
    project = make_project(fair, title="川剧变脸专场演出")
    intent = deal_service.record_intent(project.id, buyer=buyer, amount_fen=86_000_00,
                                        idempotency_key="e2e-deposit")
    signed_in(context, buyer)
    page = context.new_page()
    page.goto("/my/intents")
    form = page.locator("form.card-payment")
    expect(form.get_by_role("combobox")).to_contain_text("意向金 8,600.00")
    fill_card(form, number="4242424242424242", expires=("12", "34"),
              cvc="123", postal_code="610000")
    page.screenshot(path=artifacts / "deposit-card.png", full_page=True)
    form.get_by_role("button", name="支付意向金").click()
    expect(form.locator(".card-payment-status")).to_have_text("支付成功。", timeout=30_000)
    # The page reloads: the intent is now secured, and no deposit is offered any more.
    row = page.locator("table.intents-table tbody tr").filter(has_text="川剧变脸专场演出")
    expect(row.locator(".badge-secured")).to_have_text("已付意向金", timeout=15_000)
    expect(page.locator("form.card-payment")).to_have_count(0)
    page.screenshot(path=artifacts / "deposit-secured.png", full_page=True)
    db.session.expire_all()
    assert intent.secured
    assert db.session.scalars(select(Payment.status).where(Payment.intent_id == intent.id)
                              ).all() == [PaymentStatus.succeeded]


def test_an_exhibitor_pays_the_booth_fee_in_the_portal(
    context: BrowserContext, signed_in: SignedIn, fair: Fair, organiser: User,
    make_exhibitor: Callable[..., tuple[Exhibitor, User]], artifacts: Path
) -> None:
    fair_service.update_fair(fair, organiser=organiser,
                             changes={"booth_fee_fen": 3_000_00, "booth_fee_required": True})
    exhibitor, user = make_exhibitor(fair)
    signed_in(context, user)
    page = context.new_page()
    page.goto("/portal")
    panel = page.locator("#booth-fee")
    expect(panel).to_contain_text("3,000.00")
    expect(panel).to_contain_text("未支付")
    fill_card(panel, number="4242424242424242", expires=("11", "33"), cvc="321",
              postal_code="400000")
    page.screenshot(path=artifacts / "booth-fee-card.png", full_page=True)
    panel.get_by_role("button", name="支付展位费").click()
    expect(page.locator("#booth-fee .badge")).to_have_text("已支付", timeout=30_000)
    page.screenshot(path=artifacts / "booth-fee-paid.png", full_page=True)
    db.session.expire_all()
    assert exhibitor.booth_fee_paid
