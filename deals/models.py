"""Intents to sign, their idempotency keys, and the running totals kept beside them."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    func,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exhibitors.models import Project
from fair.accounts.models import Organisation, User
from fair.database import Base, CreatedAt, Fen, IntPK, enum_column, utcnow
from fair.money import MAX_CHARGE_FEN, MAX_DEAL_FEN
from livehalls.models import Hall


class IntentStatus(enum.Enum):
    active = "active"
    withdrawn = "withdrawn"


class Dimension(enum.Enum):
    """The ways the totals are broken down; each names a key of the totals payload."""

    buyer_province = "buyer_province"
    exhibitor_province = "exhibitor_province"
    category = "category"
    hall = "hall"
    exhibitor = "exhibitor"


class MemberKind(enum.Enum):
    """What the distinct counts of the totals count."""

    project = "project"
    buyer = "buyer"


class Intent(Base):
    """A buyer's intent to sign (签约意向) for a project, with an amount."""

    __tablename__ = "intents"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", "positive_amount"),
        CheckConstraint(f"amount_fen <= {MAX_DEAL_FEN}", "amount_within_limit"),
        Index("ix_intents_fair_buyer", "fair_id", "buyer_id"),
        Index("ix_intents_fair_exhibitor", "fair_id", "exhibitor_id"),
        Index("ix_intents_buyer_organisation_id", "buyer_organisation_id"),
    )

    id: Mapped[IntPK]
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The fields below are copied from the buyer and the project when the intent is made, so
    # that the totals, the lists and the exports read one table, and an intent keeps the
    # province and category it was counted under even if those change later.
    #: The buyer's organisation at the time.
    buyer_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    #: ISO 3166-2:CN code of the buyer's organisation.
    buyer_province: Mapped[str] = mapped_column(String(5))
    exhibitor_id: Mapped[int] = mapped_column(ForeignKey("exhibitors.id"))
    #: ISO 3166-2:CN code of the exhibiting organisation.
    exhibitor_province: Mapped[str] = mapped_column(String(5))
    #: The project's category, one of fair.reference.CATEGORIES.
    category: Mapped[str] = mapped_column(String(30))
    #: The live hall where the buyer saw the project, if it was signed from one.
    hall_id: Mapped[int | None] = mapped_column(ForeignKey("halls.id"))
    amount_fen: Mapped[Fen]
    note: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[IntentStatus] = mapped_column(
        enum_column(IntentStatus, "intent_status"), default=IntentStatus.active
    )
    created_at: Mapped[CreatedAt]
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: A deposit for this intent has been paid.
    secured: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: In the fair's totals while active: its buyer's organisation was verified when it was
    #: signed, or since. An intent of an unverified organisation is recorded, not counted.
    counted: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    #: The procurement need and the response it was signed from (needs.service.sign_response).
    #: No foreign keys (migration 0014): SQLite could add them only by rebuilding this table.
    need_id: Mapped[int | None] = mapped_column(Integer, index=True)
    response_id: Mapped[int | None] = mapped_column(Integer, index=True)

    project: Mapped[Project] = relationship(lazy="joined", innerjoin=True)
    buyer_organisation: Mapped[Organisation] = relationship(lazy="joined", innerjoin=True)
    #: The buyer as it is now: its contact person, phone and email follow the lead.
    buyer: Mapped[User] = relationship(lazy="joined", innerjoin=True)
    hall: Mapped[Hall | None] = relationship(lazy="joined")

    @property
    def is_active(self) -> bool:
        return self.status is IntentStatus.active

    def __repr__(self) -> str:
        return f"<Intent {self.id} project={self.project_id} {self.amount_fen} {self.status.value}>"


class IdempotencyKey(Base):
    """A key a buyer sent with a request to sign, and the intent that request made."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("buyer_id", "key", name="uq_idempotency_keys_buyer_key"),)

    id: Mapped[IntPK]
    buyer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: The client's Idempotency-Key header, as sent.
    key: Mapped[str] = mapped_column(String(100))
    #: SHA-256 of the request's meaning (project, amount, hall, note): a retry must match it.
    fingerprint: Mapped[str] = mapped_column(String(64))
    intent_id: Mapped[int] = mapped_column(ForeignKey("intents.id"), index=True)
    created_at: Mapped[CreatedAt]

    intent: Mapped[Intent] = relationship()

    def __repr__(self) -> str:
        return f"<IdempotencyKey {self.key!r} buyer={self.buyer_id} intent={self.intent_id}>"


class FairTotals(Base):
    """A fair's running totals over its active intents; its row lock orders every writer."""

    __tablename__ = "fair_totals"
    __table_args__ = (
        CheckConstraint("amount_fen >= 0", "amount_not_negative"),
        CheckConstraint("deal_count >= 0", "deal_count_not_negative"),
        CheckConstraint("secured_amount_fen >= 0", "secured_amount_not_negative"),
        CheckConstraint("secured_count >= 0", "secured_count_not_negative"),
    )

    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"), primary_key=True)
    #: Grows by one with every change, so that clients can tell a missed update.
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_fen: Mapped[Fen] = mapped_column(default=0)
    deal_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Projects with at least one active intent.
    project_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Buyers with at least one active intent.
    buyer_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Active intents with a paid deposit (secured), and what they are worth. Server defaults:
    #: the signing statements create the row without naming them.
    secured_amount_fen: Mapped[Fen] = mapped_column(default=0, server_default="0")
    secured_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def __repr__(self) -> str:
        return f"<FairTotals fair={self.fair_id} seq={self.seq} {self.amount_fen}>"


class FairTotalsBreakdown(Base):
    """The totals of one fair for one value of one dimension (a province, a hall...)."""

    __tablename__ = "fair_totals_breakdown"
    __table_args__ = (
        CheckConstraint("amount_fen >= 0", "amount_not_negative"),
        CheckConstraint("deal_count >= 0", "deal_count_not_negative"),
    )

    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"), primary_key=True)
    dimension: Mapped[Dimension] = mapped_column(
        enum_column(Dimension, "totals_dimension"), primary_key=True
    )
    #: A province code, a category, or a hall's or exhibitor's id written as text.
    key: Mapped[str] = mapped_column(String(30), primary_key=True)
    amount_fen: Mapped[Fen] = mapped_column(default=0)
    deal_count: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"<FairTotalsBreakdown fair={self.fair_id} {self.dimension.value}={self.key}>"


class FairTotalsMember(Base):
    """How many active intents a project or a buyer has in a fair.

    The distinct counts of FairTotals move only when one of these goes from 0 to 1 or back,
    which keeps them exact without counting intents.
    """

    __tablename__ = "fair_totals_members"
    __table_args__ = (CheckConstraint("intent_count >= 0", "intent_count_not_negative"),)

    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"), primary_key=True)
    member: Mapped[MemberKind] = mapped_column(
        enum_column(MemberKind, "totals_member"), primary_key=True
    )
    #: The project's or the buyer's id.
    member_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    intent_count: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"<FairTotalsMember fair={self.fair_id} {self.member.value}={self.member_id}>"


# --- Payments through Stripe (deals.payments): booth fees and deposits on intents -------------


class PaymentPurpose(enum.Enum):
    deposit = "deposit"
    booth_fee = "booth_fee"


class PaymentStatus(enum.Enum):
    """pending -> succeeded or failed, succeeded -> refunded; deals.payments.TRANSITIONS."""

    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"
    refunded = "refunded"


class Payment(Base):
    """A payment through Stripe in CNY fen: an exhibitor's booth fee or a buyer's deposit."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", "positive_amount"),
        CheckConstraint(f"amount_fen <= {MAX_CHARGE_FEN}", "amount_within_charge_limit"),
        CheckConstraint(
            "(purpose = 'deposit' AND intent_id IS NOT NULL AND exhibitor_id IS NULL)"
            " OR (purpose = 'booth_fee' AND exhibitor_id IS NOT NULL AND intent_id IS NULL)",
            "pays_for_one_thing",
        ),
        UniqueConstraint("payer_id", "idempotency_key", name="uq_payments_payer_key"),
    )

    id: Mapped[IntPK]
    purpose: Mapped[PaymentPurpose] = mapped_column(enum_column(PaymentPurpose, "payment_purpose"))
    status: Mapped[PaymentStatus] = mapped_column(
        enum_column(PaymentStatus, "payment_status"), default=PaymentStatus.pending
    )
    amount_fen: Mapped[Fen]
    #: ISO 4217 code, lower-case as Stripe writes it.
    currency: Mapped[str] = mapped_column(String(3), default="cny")
    payer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"), index=True)
    #: The intent a deposit secures.
    intent_id: Mapped[int | None] = mapped_column(ForeignKey("intents.id"), index=True)
    #: The exhibitor whose booth fee this is.
    exhibitor_id: Mapped[int | None] = mapped_column(ForeignKey("exhibitors.id"), index=True)
    #: The client's Idempotency-Key header: the same key again answers with this payment.
    idempotency_key: Mapped[str] = mapped_column(String(100))
    #: Stripe's PaymentIntent id (pi_...), stored before the PaymentIntent is confirmed.
    payment_intent: Mapped[str | None] = mapped_column(String(255), unique=True)
    #: Why the card was declined, in Stripe's words for the payer.
    failure_message: Mapped[str | None] = mapped_column(String(500))
    #: Set in the transaction that decides on a refund (a withdrawal); the refund itself goes
    #: to Stripe after that commit (the task send_refund), and again every minute until done.
    refund_requested_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: When a process took the refund to send it: no other sends it for a while
    #: (deals.payments.REFUND_CLAIM), so two consumers never send one refund twice.
    refund_claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=utcnow
    )

    @property
    def stripe_idempotency_key(self) -> str:
        """Stripe's idempotency key, derived from the local row: a retry never charges twice."""
        return f"payment-{self.id}"

    def __repr__(self) -> str:
        return f"<Payment {self.id} {self.purpose.value} {self.amount_fen} {self.status.value}>"


class StripeEvent(Base):
    """A Stripe event that has been applied, written in the same transaction as its effect."""

    __tablename__ = "stripe_events"

    #: Stripe's event id (evt_...).
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[CreatedAt]

    def __repr__(self) -> str:
        return f"<StripeEvent {self.id} {self.type}>"


class StripeCustomer(Base):
    """The Stripe customer that holds a user's saved cards (Stripe reuses a card only so)."""

    __tablename__ = "stripe_customers"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True,
                                         autoincrement=False)
    #: Stripe's customer id (cus_...).
    customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[CreatedAt]

    def __repr__(self) -> str:
        return f"<StripeCustomer user={self.user_id} {self.customer_id}>"
