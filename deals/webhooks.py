"""POST /stripe/webhook: Stripe's signed events, verified and handed to deals.payments."""

from __future__ import annotations

from flask import Blueprint, Flask, request

from deals import payments
from fair.extensions import csrf

bp = Blueprint("stripe_webhooks", __name__)


@bp.post("/stripe/webhook")
def receive_event() -> tuple[dict[str, object], int]:
    """Stripe sends every event here; an unsigned, wrongly signed or stale one gets a 400.

    The answer is 200 for an event applied now and for one applied before, so that Stripe
    stops sending it; an error (a 5xx) makes Stripe send it again later.
    """
    verified = payments.verify_event(request.get_data(), request.headers.get("Stripe-Signature"))
    return {"received": verified.id, "applied": payments.apply_event(verified)}, 200


def init_app(app: Flask) -> None:
    """Register the webhook (signed by Stripe, so without CSRF) and the payments' template aids."""
    csrf.exempt(bp)
    app.register_blueprint(bp)
    payments.init_app(app)
