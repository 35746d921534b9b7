"""Payments through Stripe: booth fees, deposits on intents, their webhooks, refunds, reconciling.

The order of the steps is what keeps money safe; each section below says how."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import stripe
from flask import Flask, current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from deals import totals as deal_totals
from deals.models import (
    Intent,
    Payment,
    PaymentPurpose,
    PaymentStatus,
    StripeCustomer,
    StripeEvent,
)
from exhibitors import service as exhibitor_service
from exhibitors.models import Exhibitor
from fair import permissions, tasks
from fair.accounts.models import User
from fair.database import after_commit_batched, use_case, utcnow
from fair.errors import Conflict, FairError, InvalidInput, NotFound
from fair.extensions import db
from fair.models import Fair
from fair.money import MAX_CHARGE_FEN, format_yuan, share_of
from livehalls import broadcast

logger = logging.getLogger(__name__)

#: What a client may send as Idempotency-Key, as for intents (deals.service).
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,100}", re.ASCII)
#: Without these, payments are off and the fair runs as it would without Stripe.
REQUIRED_SETTINGS = ("STRIPE_API_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET")
CLIENT_KEY = "fair.stripe"

#: Where a payment may go from each state. Stripe's events come late, twice or out of order, so
#: a move not listed here (succeeded to failed, anything out of refunded) is ignored. A failed
#: payment may still succeed (the payer finished 3-D Secure on a second try), and a refund may be
#: reported before the success it undoes.
TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.pending: frozenset(
        {PaymentStatus.succeeded, PaymentStatus.failed, PaymentStatus.refunded}
    ),
    PaymentStatus.failed: frozenset({PaymentStatus.succeeded, PaymentStatus.refunded}),
    PaymentStatus.succeeded: frozenset({PaymentStatus.refunded}),
    PaymentStatus.refunded: frozenset(),
}


class PaymentsUnavailable(FairError):
    status = 503
    code = "payments_unavailable"
    message = _l("在线支付尚未开通，暂时不能在线付款。")


class PaymentProviderError(FairError):
    status = 502
    code = "payment_provider_error"
    message = _l("支付服务暂时无法连接，请再次提交同一请求。")


class BadSignature(FairError):
    status = 400
    code = "bad_signature"
    message = _l("事件签名无效或已过期。")


@dataclass(frozen=True)
class PaymentSettings:
    """What the pages need to offer payments, or to say why they cannot."""

    unavailable_reason: str | None
    publishable_key: str | None
    js_url: str

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None


@dataclass(frozen=True)
class CardSetup:
    """A SetupIntent for the page's card form."""

    client_secret: str
    publishable_key: str


@dataclass(frozen=True)
class Checkout:
    """A payment as its payer's page needs it right after paying.

    ``client_secret`` is set only when the card asks for 3-D Secure: the page then finishes the
    payment with Stripe.js ``confirmCardPayment``. Every other attribute is the payment's.
    """

    payment: Payment
    client_secret: str | None = None

    @property
    def requires_action(self) -> bool:
        return self.client_secret is not None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.payment, name)


def settings(config: Mapping[str, Any]) -> PaymentSettings:
    """Whether payments are on, from the app's configuration."""
    missing = [name for name in REQUIRED_SETTINGS if not config.get(name)]
    reason = None
    if missing:
        reason = f"Payments are off: {', '.join(missing)} not configured."
    return PaymentSettings(unavailable_reason=reason,
                           publishable_key=config.get("STRIPE_PUBLISHABLE_KEY"),
                           js_url=config["STRIPE_JS_URL"])


def stripe_client() -> stripe.StripeClient:
    """The app's Stripe client; STRIPE_API_BASE points it elsewhere (localstripe in tests)."""
    current = settings(current_app.config)
    if not current.available:
        # The buyer reads that payment is not open yet; the operator reads what is missing.
        logger.warning("%s", current.unavailable_reason)
        raise PaymentsUnavailable()
    client: stripe.StripeClient | None = current_app.extensions.get(CLIENT_KEY)
    if client is None:
        base = current_app.config["STRIPE_API_BASE"]
        client = stripe.StripeClient(
            current_app.config["STRIPE_API_KEY"],
            base_addresses={"api": base} if base else None,
            max_network_retries=2,
        )
        current_app.extensions[CLIENT_KEY] = client
    return client


def init_app(app: Flask) -> None:
    """Offer payments to templates."""
    app.context_processor(lambda: {"payment_settings": settings(app.config)})
    app.add_template_filter(deposit_fen, "deposit")


# --- Paying ------------------------------------------------------------------------------------
# The fair never sees a card. The page saves it with a SetupIntent (Stripe.js
# ``confirmCardSetup``) and sends the payment method's id; the server creates and confirms the
# PaymentIntent.
#
# - The local Payment row is committed before Stripe hears of it, and Stripe's idempotency key
#   is derived from its id (``payment-<id>``). A retry of the request (same Idempotency-Key)
#   finds the row and resumes it with the same Stripe key, so it can never make a second charge.
# - The PaymentIntent is created unconfirmed, its id is committed, and only then is it
#   confirmed. If the process dies between creating and storing, the orphan was never confirmed
#   and cannot take money; its metadata names the local row, so a later event still finds it.


def start_card_setup(*, user: User | None) -> CardSetup:
    """A SetupIntent for the user's Stripe customer, for the page's card form."""
    user = permissions.require_user(user)
    client = stripe_client()
    try:
        setup = client.v1.setup_intents.create(params={
            "customer": _customer_of(user, client),
            "payment_method_types": ["card"],
            "usage": "on_session",
            "metadata": {"user": str(user.id)},
        })
    except stripe.StripeError as error:
        raise PaymentProviderError() from error
    assert setup.client_secret is not None  # noqa: S101 - Stripe always sends it on create
    return CardSetup(client_secret=setup.client_secret,
                     publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"])


def deposit_fen(intent: Intent, fair: Fair) -> int:
    """The fair's share of the intent, never more than Stripe's largest charge."""
    return min(share_of(intent.amount_fen, fair.deposit_percent), MAX_CHARGE_FEN)


def pay_deposit(intent: Intent, *, buyer: User | None, payment_method: str,
                idempotency_key: str) -> Checkout:
    """The buyer pays the fair's deposit on an intent, which secures it once Stripe confirms."""
    client = stripe_client()
    _check_key(idempotency_key)
    payment = _open_deposit(intent, buyer=buyer, idempotency_key=idempotency_key)
    return _charge(payment, client=client, payment_method=payment_method)


def pay_booth_fee(fair: Fair, *, user: User | None, payment_method: str,
                  idempotency_key: str) -> Checkout:
    """An approved exhibitor pays the fair's booth fee."""
    client = stripe_client()
    _check_key(idempotency_key)
    payment = _open_booth_fee(fair, user=user, idempotency_key=idempotency_key)
    return _charge(payment, client=client, payment_method=payment_method)


def access_payment(payment_id: int, user: User | None) -> Payment:
    """A payment its payer or an organiser may see."""
    user = permissions.require_user(user)
    payment = db.session.get(Payment, payment_id)
    if payment is None or not permissions.can_view_payment(user, payment):
        raise NotFound(_l("没有这笔支付。"))
    return payment


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput(
            _l("请发送 Idempotency-Key 请求头：1 到 100 个可见 ASCII 字符，例如 UUID。"),
            code="idempotency_key_invalid",
            fields={"Idempotency-Key": [_l("1 到 100 个可见 ASCII 字符。")]},
        )


@use_case()
def _open_deposit(intent: Intent, *, buyer: User | None, idempotency_key: str) -> Payment:
    buyer = permissions.require_deposit_payer(buyer, intent)
    earlier = _earlier_payment(buyer, idempotency_key, PaymentPurpose.deposit,
                               intent_id=intent.id)
    if earlier is not None:
        return earlier
    if not intent.is_active:
        raise Conflict(_l("已撤回的签约意向不能支付意向金。"), code="intent_withdrawn")
    if intent.secured:
        raise Conflict(_l("这笔签约意向的意向金已支付。"), code="already_paid")
    fair = db.session.get(Fair, intent.fair_id)
    assert fair is not None  # noqa: S101 - an intent always belongs to a fair
    amount = deposit_fen(intent, fair)
    if amount == 0:
        raise Conflict(_l("这笔签约意向金额太小，无需支付意向金。"), code="deposit_too_small")
    return _add_payment(Payment(
        purpose=PaymentPurpose.deposit, amount_fen=amount, payer_id=buyer.id, fair_id=fair.id,
        intent_id=intent.id, idempotency_key=idempotency_key,
    ))


@use_case()
def _open_booth_fee(fair: Fair, *, user: User | None, idempotency_key: str) -> Payment:
    exhibitor = exhibitor_service.exhibitor_of(fair, user)
    user = permissions.require_approved_exhibitor(user, exhibitor)
    assert exhibitor is not None  # noqa: S101 - checked just above
    earlier = _earlier_payment(user, idempotency_key, PaymentPurpose.booth_fee,
                               exhibitor_id=exhibitor.id)
    if earlier is not None:
        return earlier
    if fair.booth_fee_fen == 0:
        raise Conflict(_l("本届大会不收展位费。"), code="no_booth_fee")
    if exhibitor.booth_fee_paid:
        raise Conflict(_l("展位费已支付。"), code="already_paid")
    return _add_payment(Payment(
        purpose=PaymentPurpose.booth_fee, amount_fen=fair.booth_fee_fen, payer_id=user.id,
        fair_id=fair.id, exhibitor_id=exhibitor.id, idempotency_key=idempotency_key,
    ))


def _earlier_payment(payer: User, key: str, purpose: PaymentPurpose, *,
                     intent_id: int | None = None,
                     exhibitor_id: int | None = None) -> Payment | None:
    """The payment an earlier request with this Idempotency-Key made, if it was the same."""
    earlier = db.session.scalar(
        select(Payment).where(Payment.payer_id == payer.id, Payment.idempotency_key == key)
    )
    if earlier is None:
        return None
    if (earlier.purpose, earlier.intent_id, earlier.exhibitor_id) != (
        purpose, intent_id, exhibitor_id
    ):
        raise Conflict(
            _l("这个 Idempotency-Key 已用于另一笔支付，请换一个新的。"),
            code="idempotency_key_reused",
            fields={"Idempotency-Key": [_l("已用于另一笔支付。")]},
        )
    return earlier


def _add_payment(payment: Payment) -> Payment:
    db.session.add(payment)
    db.session.flush()
    return payment


def _charge(payment: Payment, *, client: stripe.StripeClient, payment_method: str) -> Checkout:
    """Create (once) and confirm the payment's PaymentIntent; resume it on a retry.

    This runs between commits, not inside one: the row is already committed, and the
    PaymentIntent's id is committed before it is confirmed (see the module's docstring).
    """
    if payment.status is not PaymentStatus.pending:
        return Checkout(payment)
    try:
        if payment.payment_intent is None:
            created = client.v1.payment_intents.create(
                params={
                    "amount": payment.amount_fen,
                    "currency": payment.currency,
                    "customer": _customer_of(_payer(payment), client),
                    "payment_method": payment_method,
                    "payment_method_types": ["card"],
                    "metadata": _metadata(payment),
                },
                options={"idempotency_key": payment.stripe_idempotency_key},
            )
            _store_payment_intent(payment, created.id)
            stripe_intent = created
        else:
            stripe_intent = client.v1.payment_intents.retrieve(payment.payment_intent)
        if stripe_intent.status == "requires_confirmation":
            stripe_intent = client.v1.payment_intents.confirm(
                stripe_intent.id,
                options={"idempotency_key": f"{payment.stripe_idempotency_key}-confirm"},
            )
    except stripe.CardError as error:
        _record_failure(payment, error.user_message or "The card was declined.")
        return Checkout(payment)
    except stripe.InvalidRequestError as error:
        # Stripe answered, and refused what the client sent (an unknown payment method): the
        # client's to correct, not a failure of ours or Stripe's to retry.
        raise InvalidInput(_l("Stripe 拒绝了这种支付方式。"), code="payment_method_invalid",
                           fields={"payment_method": [error.user_message or str(error)]}
                           ) from error
    except stripe.StripeError as error:
        raise PaymentProviderError() from error
    if stripe_intent.status == "requires_action":
        return Checkout(payment, client_secret=stripe_intent.client_secret)
    if stripe_intent.status == "requires_payment_method":
        last_error = stripe_intent.to_dict().get("last_payment_error") or {}
        _record_failure(payment,
                        last_error.get("message") or "The payment was not authenticated.")
    return Checkout(payment)


def _metadata(payment: Payment) -> dict[str, str]:
    """What Stripe keeps about the payment, so that its dashboard and events lead back here."""
    metadata = {"payment": str(payment.id), "fair": str(payment.fair_id),
                "purpose": payment.purpose.value}
    if payment.intent_id is not None:
        metadata["intent"] = str(payment.intent_id)
    if payment.exhibitor_id is not None:
        metadata["exhibitor"] = str(payment.exhibitor_id)
    return metadata


def _payer(payment: Payment) -> User:
    payer = db.session.get(User, payment.payer_id)
    assert payer is not None  # noqa: S101 - a foreign key
    return payer


@use_case()
def _store_payment_intent(payment: Payment, payment_intent: str) -> None:
    payment.payment_intent = payment_intent


@use_case()
def _record_failure(payment: Payment, message: str) -> None:
    locked = _lock(payment.id)
    if locked is not None and _advance(locked, PaymentStatus.failed):
        locked.failure_message = message[:500]


def _customer_of(user: User, client: stripe.StripeClient) -> str:
    """The user's Stripe customer, created on first use: a saved card lives on a customer."""
    known = db.session.get(StripeCustomer, user.id)
    if known is not None:
        return known.customer_id
    customer = client.v1.customers.create(
        params={"email": user.email, "name": user.name, "metadata": {"user": str(user.id)}},
        options={"idempotency_key": f"customer-{user.id}"},
    )
    try:
        _store_customer(user, customer.id)
    except IntegrityError:
        # A second request of the same user stored it first (with the same customer, thanks
        # to the idempotency key).
        known = db.session.get(StripeCustomer, user.id)
        assert known is not None  # noqa: S101 - the other request committed it
        return known.customer_id
    return customer.id


@use_case()
def _store_customer(user: User, customer_id: str) -> None:
    db.session.add(StripeCustomer(user_id=user.id, customer_id=customer_id))


# --- Webhooks ----------------------------------------------------------------------------------
# Success is applied only from Stripe's signed webhook, in the transaction that records the
# event's id (``StripeEvent``): each event takes effect once, however often and in whatever
# order it arrives, and a crash leaves either both or neither. A payment only moves forward
# (``TRANSITIONS``).


def verify_event(payload: bytes, signature: str | None) -> stripe.Event:
    """Check Stripe's signature (and its age) on a webhook's body; refuse anything else."""
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        logger.warning("%s", settings(current_app.config).unavailable_reason)
        raise PaymentsUnavailable()
    try:
        return stripe.Webhook.construct_event(payload, signature or "", secret)
    except (stripe.SignatureVerificationError, ValueError) as error:
        raise BadSignature() from error


def apply_event(verified: stripe.Event) -> bool:
    """Apply a verified event once; False when it had already been applied."""
    try:
        return _apply_event(verified.id, verified.type, verified.data.object.to_dict())
    except IntegrityError:
        # The same event, delivered twice at once, was recorded by the other delivery.
        return False


@use_case()
def _apply_event(event_id: str, event_type: str, data: Mapping[str, Any]) -> bool:
    if db.session.get(StripeEvent, event_id) is not None:
        return False
    db.session.add(StripeEvent(id=event_id, type=event_type))
    db.session.flush()
    handler = EVENT_HANDLERS.get(event_type)
    if handler is not None:
        handler(data)
    return True


def _on_payment_succeeded(data: Mapping[str, Any]) -> None:
    payment = _payment_for(data.get("id"), data)
    if payment is not None and _matches(payment, data):
        _advance(payment, PaymentStatus.succeeded)


def _on_payment_failed(data: Mapping[str, Any]) -> None:
    payment = _payment_for(data.get("id"), data)
    if payment is not None and _advance(payment, PaymentStatus.failed):
        error = data.get("last_payment_error") or {}
        payment.failure_message = str(error.get("message") or "The payment failed.")[:500]


def _on_charge_refunded(data: Mapping[str, Any]) -> None:
    if not data.get("refunded"):
        return  # a partial refund; the fair never makes one
    payment = _payment_for(data.get("payment_intent"), data)
    if payment is not None:
        _advance(payment, PaymentStatus.refunded)


EVENT_HANDLERS = {
    "payment_intent.succeeded": _on_payment_succeeded,
    "payment_intent.payment_failed": _on_payment_failed,
    "payment_intent.canceled": _on_payment_failed,
    "charge.refunded": _on_charge_refunded,
}


def _payment_for(payment_intent: object, data: Mapping[str, Any]) -> Payment | None:
    """The local payment of a Stripe object, locked for the rest of the transaction.

    A PaymentIntent whose id never reached the database (the process died right after
    creating it) is found through its metadata, and its id is stored then.
    """
    if not isinstance(payment_intent, str):
        return None
    payment_id = db.session.scalar(
        select(Payment.id).where(Payment.payment_intent == payment_intent)
    )
    if payment_id is None:
        local_id = str((data.get("metadata") or {}).get("payment", ""))
        if not local_id.isdigit():
            return None  # not one of ours
        payment_id = int(local_id)
    payment = _lock(payment_id)
    if payment is None or payment.payment_intent not in (None, payment_intent):
        return None  # an unconfirmed orphan of a retry; reconcile-payments reports it
    payment.payment_intent = payment_intent
    return payment


def _lock(payment_id: int) -> Payment | None:
    """Lock a payment for the rest of the transaction, after the intent it pays for.

    Writers of intents lock the intent's row before anything else (deals.totals), and a
    withdrawal then marks the deposit for a refund; taking the intent first here too keeps
    the order the same everywhere, so a webhook and a withdrawal queue instead of deadlocking.
    """
    intent_id = db.session.scalar(select(Payment.intent_id).where(Payment.id == payment_id))
    if intent_id is not None:
        db.session.execute(select(Intent.id).where(Intent.id == intent_id).with_for_update())
    return db.session.scalar(
        select(Payment).where(Payment.id == payment_id).with_for_update()
        .execution_options(populate_existing=True)
    )


def _matches(payment: Payment, data: Mapping[str, Any]) -> bool:
    """A success for another amount or currency is never applied; reconciliation reports it."""
    matches = data.get("amount") == payment.amount_fen and data.get("currency") == payment.currency
    if not matches:
        logger.error("Stripe reports %s %s for payment %s of %s %s; not applied.",
                     data.get("amount"), data.get("currency"), payment.id, payment.amount_fen,
                     payment.currency)
    return matches


def _advance(payment: Payment, status: PaymentStatus) -> bool:
    """Move a payment forward and apply the consequences; False when the move is not allowed."""
    if status not in TRANSITIONS[payment.status]:
        return False
    payment.status = status
    db.session.flush()
    if payment.purpose is PaymentPurpose.deposit:
        _settle_deposit(payment)
    else:
        _settle_booth_fee(payment)
    return True


def _settle_deposit(payment: Payment) -> None:
    """An intent is secured while one of its deposits stands paid; a surplus is refunded.

    The fair's secured figures count the active intents that are counted and secured, and move
    with them. The intent's row is locked before it is read, so that whether it is counted
    cannot change under this (deals.service.verify_organisation locks it too).
    """
    db.session.execute(select(Intent.id).where(Intent.id == payment.intent_id).with_for_update())
    intent = db.session.get(Intent, payment.intent_id, populate_existing=True)
    assert intent is not None  # noqa: S101 - a foreign key
    paid = _paid(Payment.intent_id == intent.id)
    if payment.status is PaymentStatus.succeeded and (not intent.is_active or len(paid) > 1):
        # Paid for an intent withdrawn meanwhile, or paid twice through two requests.
        request_refund(payment)
        paid.remove(payment)
    was_secured = intent.is_active and intent.secured
    intent.secured = bool(paid)
    if intent.is_active and intent.counted and intent.secured != was_secured:
        db.session.flush()
        deal_totals.move_secured(intent, +1 if intent.secured else -1)
        if intent.secured:
            broadcast.deal_secured(intent.fair_id, deal_id=intent.id)
        else:
            broadcast.totals_changed(intent.fair_id)


def _settle_booth_fee(payment: Payment) -> None:
    exhibitor = db.session.get(Exhibitor, payment.exhibitor_id, populate_existing=True)
    assert exhibitor is not None  # noqa: S101 - a foreign key
    paid = _paid(Payment.exhibitor_id == exhibitor.id)
    if payment.status is PaymentStatus.succeeded and len(paid) > 1:
        request_refund(payment)
        paid.remove(payment)
    exhibitor.booth_fee_paid = bool(paid)


def _paid(condition: Any) -> list[Payment]:
    """Succeeded payments not yet on their way back."""
    return list(db.session.scalars(
        select(Payment).where(condition, Payment.status == PaymentStatus.succeeded,
                              Payment.refund_requested_at.is_(None))
    ))


# --- Refunds -----------------------------------------------------------------------------------
# A refund is decided in the transaction that causes it (a withdrawal, or a payment for
# something already paid) by setting ``refund_requested_at``; the task ``send_refund`` is queued
# after that commit and sends it with the key ``refund-<id>``. Whatever was not sent (a crash,
# an outage) is sent again by ``retry_refunds`` every minute (or ``flask fair retry-refunds``),
# and ``flask fair reconcile-payments`` lists it until it is done. A sender first claims the
# refund (``refund_claimed_at``), so two consumers never both send it.


def refund_deposits(intent: Intent) -> None:
    """Decide, inside the withdrawal's transaction, to give back the intent's paid deposits."""
    for payment in _paid(Payment.intent_id == intent.id):
        request_refund(payment)


def request_refund(payment: Payment) -> None:
    """Record that a paid payment goes back; Stripe hears of it after the commit."""
    if payment.status is not PaymentStatus.succeeded or payment.refund_requested_at is not None:
        return
    payment.refund_requested_at = utcnow()
    db.session.flush()
    after_commit_batched(_send_requested_refunds, payment.id)


#: How long a sender's claim on a refund keeps the others off it: longer than a Stripe call with
#: its network retries. Should the sender die meanwhile, the refund is sent again after this,
#: with the same idempotency key, so Stripe still makes it once.
REFUND_CLAIM = dt.timedelta(minutes=10)


def issue_refund(payment_id: int) -> Payment:
    """Ask Stripe for a requested refund and record it once Stripe has made it.

    Only the process that claims the refund sends it; for any other (or for a refund that is
    done, or not requested) this changes nothing and answers the payment as it stands.
    """
    claim = _claim_refund(payment_id)
    payment = db.session.get(Payment, payment_id, populate_existing=True)
    if payment is None:
        raise NotFound(_l("没有这笔支付。"))
    if claim is None:
        return payment
    try:
        refund = stripe_client().v1.refunds.create(
            params={"payment_intent": payment.payment_intent,
                    "metadata": {"payment": str(payment.id)}},
            options={"idempotency_key": f"refund-{payment.id}"},
        )
    except stripe.InvalidRequestError as error:
        if error.code != "charge_already_refunded":
            _release_refund(payment.id, claim)
            raise
    except (stripe.StripeError, FairError):
        _release_refund(payment.id, claim)  # the next attempt need not wait for it to lapse
        raise
    else:
        if refund.status != "succeeded":
            return payment  # pending at the bank: charge.refunded will report it
    _record_refund(payment)
    return payment


@use_case()
def requested_refunds() -> list[int]:
    """The payments whose refund is decided, not made, and not claimed by a sender now."""
    return list(db.session.scalars(
        select(Payment.id).where(*_refund_due(utcnow())).order_by(Payment.id)
    ))


def issue_requested_refunds() -> list[tuple[Payment, str | None]]:
    """Send every requested refund that is not done; for each, the error that stopped it."""
    results: list[tuple[Payment, str | None]] = []
    for payment_id in requested_refunds():
        try:
            results.append((issue_refund(payment_id), None))
        except (stripe.StripeError, FairError) as error:
            payment = db.session.get(Payment, payment_id)
            assert payment is not None  # noqa: S101 - it was just read
            results.append((payment, str(error)))
    return results


@tasks.task(retries=5, retry_delay=30, retry_backoff=2)
def send_refund(payment_id: int) -> None:
    """Send one requested refund, queued when the transaction that decided it commits.

    A Stripe error fails the task, which huey tries again after 30 s, 1, 2, 4 and 8 min.
    """
    issue_refund(payment_id)


@tasks.periodic_task(tasks.crontab(minute="*"))
def retry_refunds() -> None:
    """Every minute, send the refunds that were decided and are still not made."""
    for payment, error in issue_requested_refunds():
        if error is not None:
            logger.warning("The refund of payment %s was not sent (%s); it is tried again "
                           "in a minute.", payment.id, error)


def _refund_due(now: dt.datetime) -> tuple[Any, ...]:
    return (Payment.refund_requested_at.is_not(None),
            Payment.status == PaymentStatus.succeeded,
            or_(Payment.refund_claimed_at.is_(None),
                Payment.refund_claimed_at < now - REFUND_CLAIM))


@use_case()
def _claim_refund(payment_id: int) -> dt.datetime | None:
    """Take a due refund for this process, in one statement of its own transaction; the claim's
    time, or None when the refund is not due (done, not requested, or claimed by another).

    Of two senders at once, the database lets one update the row; the other's condition no
    longer holds once it may look (PostgreSQL re-checks it after the row lock; SQLite lets one
    writer at a time).
    """
    now = utcnow()
    claimed = db.session.execute(
        update(Payment).where(Payment.id == payment_id, *_refund_due(now))
        .values(refund_claimed_at=now).execution_options(synchronize_session=False)
    )
    return now if claimed.rowcount else None


@use_case()
def _release_refund(payment_id: int, claim: dt.datetime) -> None:
    """Give up this process's claim (not one another process took since it lapsed)."""
    db.session.execute(
        update(Payment).where(Payment.id == payment_id, Payment.refund_claimed_at == claim)
        .values(refund_claimed_at=None).execution_options(synchronize_session=False)
    )


@use_case()
def _record_refund(payment: Payment) -> None:
    locked = _lock(payment.id)
    assert locked is not None  # noqa: S101 - it was just read
    _advance(locked, PaymentStatus.refunded)


def _send_requested_refunds(payment_ids: list[int]) -> None:
    """Queue the refunds a transaction decided, once it committed: a consumer of the task queue
    sends them in a session of its own (at once, in the unit tests' immediate mode)."""
    for payment_id in payment_ids:
        try:
            send_refund(payment_id)
        except Exception:
            # The withdrawal stands, committed; retry_refunds finds the refund within a minute.
            logger.exception("Could not queue the refund of payment %s.", payment_id)


# --- Reconciliation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One way the local books and Stripe's disagree."""

    payment_id: int | None
    payment_intent: str | None
    problem: str

    def __str__(self) -> str:
        local = f"payment {self.payment_id}" if self.payment_id is not None else "no payment"
        return f"{local} / {self.payment_intent or 'no PaymentIntent'}: {self.problem}"


def reconcile() -> list[Difference]:
    """Compare every local payment with Stripe's PaymentIntents; list the differences."""
    client = stripe_client()
    try:
        remote = {intent.id: intent.to_dict() for intent in _stripe_payment_intents(client)}
    except stripe.StripeError as error:
        raise PaymentProviderError() from error
    differences: list[Difference] = []
    seen: set[str] = set()
    for payment in db.session.scalars(select(Payment).order_by(Payment.id)):
        if payment.payment_intent is None:
            if payment.status is not PaymentStatus.pending:
                differences.append(Difference(payment.id, None,
                                              f"{payment.status.value} without a PaymentIntent"))
            continue
        seen.add(payment.payment_intent)
        intent = remote.get(payment.payment_intent)
        if intent is None:
            differences.append(Difference(payment.id, payment.payment_intent,
                                          "Stripe has no such PaymentIntent"))
            continue
        differences.extend(_compare(payment, intent))
    for intent_id, intent in remote.items():
        local_id = (intent.get("metadata") or {}).get("payment")
        if intent_id not in seen and local_id is not None and _took_money(intent):
            differences.append(Difference(
                None, intent_id,
                f"{intent['status']} at Stripe for {format_yuan(intent['amount'])} "
                f"{intent['currency']} (payment {local_id}), unknown here",
            ))
    return differences


def _stripe_payment_intents(client: stripe.StripeClient) -> Iterator[stripe.PaymentIntent]:
    listing = client.v1.payment_intents.list(
        params={"limit": 100, "expand": ["data.latest_charge"]}
    )
    return iter(listing.auto_paging_iter())


def _remote_status(intent: Mapping[str, Any]) -> PaymentStatus:
    """What the local status should be, judging by Stripe's PaymentIntent."""
    if intent["status"] == "succeeded":
        charge = intent.get("latest_charge")
        refunded = isinstance(charge, Mapping) and bool(charge.get("refunded"))
        return PaymentStatus.refunded if refunded else PaymentStatus.succeeded
    if intent["status"] == "canceled" or (
        intent["status"] == "requires_payment_method" and intent.get("last_payment_error")
    ):
        return PaymentStatus.failed
    return PaymentStatus.pending


def _took_money(intent: Mapping[str, Any]) -> bool:
    return _remote_status(intent) in {PaymentStatus.succeeded, PaymentStatus.refunded}


def _compare(payment: Payment, intent: Mapping[str, Any]) -> list[Difference]:
    found = []
    if intent["amount"] != payment.amount_fen or intent["currency"] != payment.currency:
        found.append(Difference(
            payment.id, intent["id"],
            f"amount {format_yuan(payment.amount_fen)} {payment.currency} here, "
            f"{format_yuan(intent['amount'])} {intent['currency']} at Stripe",
        ))
    remote = _remote_status(intent)
    if remote is not payment.status:
        found.append(Difference(payment.id, intent["id"],
                                f"{payment.status.value} here, {remote.value} at Stripe"))
    elif payment.refund_requested_at is not None and remote is not PaymentStatus.refunded:
        found.append(Difference(payment.id, intent["id"],
                                "refund requested here, not yet made at Stripe"))
    return found
