"""Intents to sign and the fairs' running totals."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_babel import to_user_timezone
from flask_smorest import Blueprint

from deals import exports, payments, service
from deals import totals as deal_totals
from deals.models import Intent, Payment
from deals.schemas import (
    CardSetupSchema,
    CheckoutSchema,
    DealListQuerySchema,
    DealListSchema,
    DealSchema,
    IdempotencyHeaderSchema,
    IntentInputSchema,
    PaymentHeadersSchema,
    PaymentMethodSchema,
    PaymentSchema,
)
from fair import service as fair_service
from fair.accounts import limits
from fair.accounts.models import Organisation, Role
from fair.accounts.schemas import OrganisationSchema
from fair.auth import current_user
from fair.database import utcnow
from livehalls.schemas import TotalsSchema

blp = Blueprint("deals", __name__, url_prefix="/api/v1",
                description="Intents to sign (签约意向) and the fairs' totals")


@blp.post("/projects/<int:project_id>/deals")
@limits.signing_limited(current_user)
@blp.arguments(IdempotencyHeaderSchema, location="headers")
@blp.arguments(IntentInputSchema)
@blp.response(201, DealSchema)
def sign(headers: dict[str, str], data: dict[str, Any], project_id: int) -> Intent:
    """Sign an intent (buyers). Sending the same Idempotency-Key and body again answers 201
    with the same intent and changes nothing; the same key with another body is refused.
    A buyer's requests are limited per account (429 with Retry-After)."""
    return service.record_intent(project_id, buyer=current_user(),
                                 idempotency_key=headers["idempotency_key"], **data)


@blp.post("/deals/<int:intent_id>/withdraw")
@blp.response(200, DealSchema)
def withdraw(intent_id: int) -> Intent:
    """Withdraw an intent (its buyer); it leaves the totals."""
    user = current_user()
    return service.withdraw_intent(service.access_intent(intent_id, user), buyer=user)


@blp.get("/deals/<int:intent_id>")
@blp.response(200, DealSchema)
def get_deal(intent_id: int) -> Intent:
    """One intent (its buyer, the project's exhibitor, organisers)."""
    return service.access_intent(intent_id, current_user())


@blp.get("/fairs/<int:fair_id>/deals")
@blp.arguments(DealListQuerySchema, location="query")
@blp.response(200, DealListSchema, description="JSON; ?format=csv (UTF-8 with BOM) or xlsx")
@blp.doc(responses={"200": {"content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/DealList"}},
    **{content_type: {"schema": {"type": "string", "format": "binary"}}
       for content_type in (exports.CSV_TYPE, exports.XLSX_TYPE)}}}})
def list_deals(query: dict[str, Any], fair_id: int) -> service.IntentPage | Response:
    """The fair's intents: organisers all, an exhibitor those on its projects, a buyer its own."""
    fair = fair_service.access_fair(fair_id)
    if query["format"] == "json":
        return service.list_intents(fair, user=current_user(), page=query["page"],
                                    per_page=query["per_page"])
    user = current_user()
    # Exhibitors get their leads' contacts (only their own projects' intents are exported to
    # them); buyers export their own intents and need no contacts.
    export = exports.render(service.export_intents(fair, user=user),
                            file_format=query["format"], title=fair.name,
                            contacts=user is not None and user.role is not Role.buyer)
    assert user is not None  # noqa: S101 - export_intents has refused anonymous visitors
    filename = exports.file_name(fair.id, user.role.value,
                                 to_user_timezone(utcnow()).date(), export.extension)
    return Response(export.body, content_type=export.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@blp.get("/fairs/<int:fair_id>/totals")
@blp.response(200, TotalsSchema)
def get_totals(fair_id: int) -> deal_totals.Totals:
    """The fair's running totals over active intents, by province, category, hall, exhibitor;
    the dashboard's `totals` message carries the same."""
    return deal_totals.read_figures(fair_service.access_fair(fair_id).id)


# --- Verifying buyers' organisations -----------------------------------------------------------


@blp.post("/organisations/<int:organisation_id>/verify")
@blp.response(200, OrganisationSchema)
def verify_organisation(organisation_id: int) -> Organisation:
    """Verify a buyer's organisation (organisers): its intents, those already signed included,
    count in the public totals from now on. Verifying again changes nothing."""
    return service.verify_organisation(organisation_id, organiser=current_user())


@blp.delete("/organisations/<int:organisation_id>/verify")
@blp.response(200, OrganisationSchema)
def unverify_organisation(organisation_id: int) -> Organisation:
    """Take a verification back (organisers): the organisation's intents leave the public
    totals and are recorded only, until it is verified again."""
    return service.unverify_organisation(organisation_id, organiser=current_user())


# --- Payments through Stripe (deals.payments) --------------------------------------------------


@blp.post("/payments/setup")
@blp.response(200, CardSetupSchema)
def setup_card() -> payments.CardSetup:
    """A SetupIntent for the page's card form (anyone signed in); 503 without Stripe."""
    return payments.start_card_setup(user=current_user())


@blp.post("/deals/<int:intent_id>/deposit")
@blp.arguments(PaymentHeadersSchema, location="headers")
@blp.arguments(PaymentMethodSchema)
@blp.response(201, CheckoutSchema)
def pay_deposit(headers: dict[str, str], data: dict[str, str],
                intent_id: int) -> payments.Checkout:
    """Pay the deposit on an intent (its buyer): the fair's deposit_percent of its amount.

    The same Idempotency-Key again answers with the same payment. When ``requires_action``
    is true the page finishes 3-D Secure with Stripe.js ``confirmCardPayment``; the intent is
    ``secured`` once Stripe's webhook reports the payment succeeded."""
    user = current_user()
    return payments.pay_deposit(service.access_intent(intent_id, user), buyer=user,
                                idempotency_key=headers["idempotency_key"], **data)


@blp.post("/fairs/<int:fair_id>/booth-fee")
@blp.arguments(PaymentHeadersSchema, location="headers")
@blp.arguments(PaymentMethodSchema)
@blp.response(201, CheckoutSchema)
def pay_booth_fee(headers: dict[str, str], data: dict[str, str],
                  fair_id: int) -> payments.Checkout:
    """Pay the fair's booth fee (approved exhibitors), as the deposit is paid."""
    return payments.pay_booth_fee(fair_service.access_fair(fair_id), user=current_user(),
                                  idempotency_key=headers["idempotency_key"], **data)


@blp.get("/payments/<int:payment_id>")
@blp.response(200, PaymentSchema)
def get_payment(payment_id: int) -> Payment:
    """One payment (its payer, organisers)."""
    return payments.access_payment(payment_id, current_user())
