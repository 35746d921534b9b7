"""Intent and payment payloads of the API, and the exports' query. An intent as viewers see it
and the totals are livehalls.schemas' (DealEventSchema, TotalsSchema), defined once."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from deals.models import IntentStatus, PaymentPurpose, PaymentStatus
from fair.accounts.schemas import Id, StrictSchema, Text
from fair.errors import InvalidInput
from fair.money import YuanField
from fair.schemas import UtcDateTime
from livehalls.schemas import ProjectRefSchema

MAX_PER_PAGE = 500


class IntentInputSchema(StrictSchema):
    amount_fen = YuanField(
        required=True, data_key="amount",
        metadata={"description": "yuan as a decimal string, such as \"120000.00\""},
    )
    hall_id = Id(load_default=None, allow_none=True,
                 metadata={"description": "the live hall where the buyer saw it"})
    note = Text(load_default="", validate=validate.Length(max=500))


#: What a client may send as Idempotency-Key (deals.service checks the same): visible ASCII.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,100}$"


class IdempotencyHeaderSchema(Schema):
    """The request's headers; only the idempotency key matters here."""

    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.Str(
        data_key="Idempotency-Key",
        required=True,
        validate=validate.Regexp(IDEMPOTENCY_KEY_PATTERN),
        metadata={"description": "1 to 100 visible ASCII characters, new for every intent "
                                 "and sent again unchanged on a retry (a UUID fits)"},
    )

    def handle_error(self, error: ValidationError, data: Any, **kwargs: Any) -> None:
        # The refusal every client knows for a missing or malformed key (the service's).
        raise InvalidInput(
            _l("请发送 Idempotency-Key 请求头：1 到 100 个可见 ASCII 字符，例如一个 UUID。"),
            code="idempotency_key_invalid",
            fields={"Idempotency-Key": [_l("1 到 100 个可见 ASCII 字符。")]},
        ) from error


class DealListQuerySchema(Schema):
    """The listing's query string; unknown parameters (such as ``lang``) are ignored."""

    class Meta:
        unknown = EXCLUDE

    format = fields.Str(load_default="json", validate=validate.OneOf(["json", "csv", "xlsx"]))
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=10_000))
    per_page = fields.Int(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class DealOrganisationSchema(Schema):
    name = fields.Str()
    province = fields.Str()


class DealSchema(Schema):
    id = fields.Int()
    fair_id = fields.Int()
    project_id = fields.Int()
    project = fields.Nested(ProjectRefSchema)
    amount = YuanField(attribute="amount_fen")
    status = fields.Enum(IntentStatus, by_value=True)
    secured = fields.Bool()
    counted = fields.Bool(metadata={
        "description": "In the public totals while active: false while the buyer's "
                       "organisation is not verified (the intent is recorded, not counted)"})
    hall_id = fields.Int(allow_none=True)
    note = fields.Str()
    category = fields.Str()
    buyer_province = fields.Str()
    buyer_organisation = fields.Nested(DealOrganisationSchema)
    exhibitor_id = fields.Int()
    exhibitor_province = fields.Str()
    created_at = UtcDateTime()
    withdrawn_at = UtcDateTime(allow_none=True)
    #: The procurement need and response it was signed from, if any.
    need_id = fields.Int(allow_none=True)
    response_id = fields.Int(allow_none=True)


class DealListSchema(Schema):
    items = fields.List(fields.Nested(DealSchema))
    total = fields.Int()


# --- Payments through Stripe (deals.payments) --------------------------------------------------


class PaymentHeadersSchema(IdempotencyHeaderSchema):
    """A payment request's headers; only the idempotency key matters here."""

    idempotency_key = fields.Str(
        data_key="Idempotency-Key",
        required=True,
        validate=validate.Regexp(IDEMPOTENCY_KEY_PATTERN),
        metadata={"description": "1 to 100 visible ASCII characters, new for every payment "
                                 "and sent again unchanged on a retry (a UUID fits)"},
    )


class PaymentMethodSchema(StrictSchema):
    payment_method = fields.Str(
        required=True, validate=validate.Regexp(r"^pm_[A-Za-z0-9_]{1,250}$"),
        metadata={"description": "the PaymentMethod that Stripe.js confirmCardSetup saved"},
    )


class CardSetupSchema(Schema):
    client_secret = fields.Str(
        metadata={"description": "the SetupIntent's, for Stripe.js confirmCardSetup"})
    publishable_key = fields.Str()


class PaymentSchema(Schema):
    id = fields.Int()
    purpose = fields.Enum(PaymentPurpose, by_value=True)
    status = fields.Enum(PaymentStatus, by_value=True)
    amount = YuanField(attribute="amount_fen")
    currency = fields.Str()
    fair_id = fields.Int()
    intent_id = fields.Int(allow_none=True)
    exhibitor_id = fields.Int(allow_none=True)
    payment_intent = fields.Str(allow_none=True, metadata={"description": "Stripe's pi_ id"})
    failure_message = fields.Str(allow_none=True)
    refund_requested = fields.Function(lambda payment: payment.refund_requested_at is not None)
    created_at = UtcDateTime()


class CheckoutSchema(PaymentSchema):
    """A payment right after paying; 3-D Secure is finished on the page when it asks for it."""

    requires_action = fields.Bool(
        metadata={"description": "finish with Stripe.js confirmCardPayment(client_secret)"})
    client_secret = fields.Str(allow_none=True)
