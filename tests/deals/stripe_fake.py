"""An in-memory stand-in for stripe.StripeClient, and Stripe's webhook signature.

It answers with the stripe library's own objects and keeps Stripe's rules that the payment
service relies on: idempotency keys, the PaymentIntent statuses, declines as CardError, refunds.
Test cards are the payment method ids Stripe documents (``pm_card_visa`` and friends).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import stripe

STRIPE_SETTINGS = {
    "STRIPE_API_KEY": "sk_test_fair",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_fair",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_fair",
}
VISA = "pm_card_visa"
DECLINED = "pm_card_chargeDeclined"
#: A card that asks for 3-D Secure.
THREE_D_SECURE = "pm_card_threeDSecure2Required"

_ids = itertools.count(1)


def signature_header(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send with this body."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_payload(event_type: str, data: dict[str, Any], *, event_id: str | None = None
                  ) -> bytes:
    """A webhook body as Stripe sends it."""
    return json.dumps({
        "id": event_id or f"evt_{next(_ids)}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "api_version": "2025-01-27.acacia",
        "data": {"object": data},
    }).encode()


@dataclass
class _Service:
    fake: FakeStripe
    name: str

    def __getattr__(self, method: str) -> Any:
        handler = getattr(self.fake, f"_{self.name}_{method}")

        def call(*args: Any, params: dict[str, Any] | None = None,
                 options: dict[str, Any] | None = None) -> Any:
            self.fake.calls.append((f"{self.name}.{method}", args, params or {}, options or {}))
            if self.fake.unreachable:
                raise stripe.APIConnectionError("Stripe cannot be reached (fake).")
            return handler(*args, params=params or {}, options=options or {})

        return call


@dataclass
class _V1:
    fake: FakeStripe

    def __getattr__(self, name: str) -> _Service:
        return _Service(self.fake, name)


@dataclass
class FakeStripe:
    """Enough of stripe.StripeClient for deals.payments."""

    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any], dict[str, Any]]] = field(
        default_factory=list)
    #: While true, every call fails as a network error would.
    unreachable: bool = False
    _answers: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def v1(self) -> _V1:
        return _V1(self)

    def count(self, name: str) -> int:
        return sum(1 for call in self.calls if call[0] == name)

    def succeed(self, intent_id: str) -> dict[str, Any]:
        """Complete a PaymentIntent as the payer's bank would (after 3-D Secure)."""
        intent = self.intents[intent_id]
        intent.update(status="succeeded", next_action=None,
                      latest_charge={"id": f"ch_{next(_ids)}", "object": "charge",
                                     "payment_intent": intent_id, "refunded": False,
                                     "amount": intent["amount"]})
        return intent

    def charge_of(self, intent_id: str) -> dict[str, Any]:
        charge: dict[str, Any] = self.intents[intent_id]["latest_charge"]
        return charge

    # --- the API ---------------------------------------------------------------------------

    def _idempotent(self, name: str, options: dict[str, Any], make: Any) -> Any:
        key = options.get("idempotency_key")
        if key is None:
            return make()
        if (name, key) not in self._answers:
            self._answers[(name, key)] = make()
        return self._answers[(name, key)]

    def _customers_create(self, *, params: dict[str, Any], options: dict[str, Any]) -> Any:
        return self._idempotent("customers", options, lambda: stripe.Customer.construct_from(
            {"id": f"cus_{next(_ids)}", "object": "customer", **params}, "sk_test_fair"))

    def _setup_intents_create(self, *, params: dict[str, Any], options: dict[str, Any]) -> Any:
        number = next(_ids)
        return stripe.SetupIntent.construct_from(
            {"id": f"seti_{number}", "object": "setup_intent",
             "client_secret": f"seti_{number}_secret_fake", "status": "requires_payment_method",
             **params}, "sk_test_fair")

    def _payment_intents_create(self, *, params: dict[str, Any], options: dict[str, Any]
                                ) -> Any:
        def make() -> str:
            number = next(_ids)
            intent_id = f"pi_{number}"
            self.intents[intent_id] = {
                "id": intent_id, "object": "payment_intent", "amount": params["amount"],
                "currency": params["currency"], "customer": params.get("customer"),
                "payment_method": params.get("payment_method"),
                "metadata": dict(params.get("metadata", {})),
                "client_secret": f"{intent_id}_secret_fake", "status": "requires_confirmation",
                "latest_charge": None, "last_payment_error": None, "next_action": None,
            }
            return intent_id

        return self._intent(self._idempotent("payment_intents", options, make))

    def _payment_intents_retrieve(self, intent_id: str, *, params: dict[str, Any],
                                  options: dict[str, Any]) -> Any:
        if intent_id not in self.intents:
            raise stripe.InvalidRequestError("No such payment_intent", "id",
                                             code="resource_missing")
        return self._intent(intent_id)

    def _payment_intents_confirm(self, intent_id: str, *, params: dict[str, Any],
                                 options: dict[str, Any]) -> Any:
        def confirm() -> str:
            intent = self.intents[intent_id]
            if intent["status"] != "requires_confirmation":
                raise stripe.InvalidRequestError("This PaymentIntent cannot be confirmed.", None)
            if intent["payment_method"] == DECLINED:
                intent.update(status="requires_payment_method", last_payment_error={
                    "code": "card_declined", "message": "Your card was declined."})
                raise stripe.CardError("Your card was declined.", None, "card_declined")
            if intent["payment_method"] == THREE_D_SECURE:
                intent.update(status="requires_action", next_action={"type": "use_stripe_sdk"})
            else:
                self.succeed(intent_id)
            return intent_id

        return self._intent(self._idempotent("confirm", options, confirm))

    def _payment_intents_list(self, *, params: dict[str, Any], options: dict[str, Any]) -> Any:
        fake = self

        class Listing:
            def auto_paging_iter(self) -> Iterator[Any]:
                return iter([fake._intent(intent_id) for intent_id in fake.intents])

        return Listing()

    def _refunds_create(self, *, params: dict[str, Any], options: dict[str, Any]) -> Any:
        def refund() -> Any:
            charge = self.charge_of(params["payment_intent"])
            if charge["refunded"]:
                raise stripe.InvalidRequestError("Charge has already been refunded.", None,
                                                 code="charge_already_refunded")
            charge["refunded"] = True
            return stripe.Refund.construct_from(
                {"id": f"re_{next(_ids)}", "object": "refund", "status": "succeeded",
                 "payment_intent": params["payment_intent"]}, "sk_test_fair")

        return self._idempotent("refunds", options, refund)

    def _intent(self, intent_id: str) -> stripe.PaymentIntent:
        return stripe.PaymentIntent.construct_from(json.loads(json.dumps(
            self.intents[intent_id])), "sk_test_fair")
