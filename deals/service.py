"""Intent use cases: sign, withdraw, look up and list intents to sign."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, false, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload, make_transient_to_detached

from audience import recording as audience
from deals import payments
from deals import signing as deal_signing
from deals import totals as deal_totals
from deals.models import IdempotencyKey, Intent, IntentStatus
from exhibitors import service as exhibitor_service
from exhibitors.models import Project
from fair import permissions
from fair.accounts.models import Organisation, Role, User
from fair.database import use_case, utcnow
from fair.errors import Conflict, InvalidInput, NotFound
from fair.extensions import db
from fair.models import Fair
from fair.money import MAX_DEAL_FEN
from livehalls import broadcast
from livehalls.schemas import DealEventSchema

#: What a client may send as Idempotency-Key: visible ASCII, so a UUID or any token fits.
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,100}", re.ASCII)
MAX_NOTE_LENGTH = 500
_DEAL_EVENT = DealEventSchema()

# Intent writers take rows in one order (deals.totals), so they never deadlock each other; other
# writers of those rows (payments, operators' scripts) might not, hence retry. The answer is the
# intent as written: expiring it on commit would load it again, a round trip on the hot path.
@use_case(retry=True, keep_loaded=True)
def record_intent(
    project_id: int,
    *,
    buyer: User | None,
    amount_fen: int,
    idempotency_key: str,
    hall_id: int | None = None,
    note: str = "",
    need_id: int | None = None,
    response_id: int | None = None,
) -> Intent:
    """Record a buyer's intent to sign for a published project of an open fair.

    The Idempotency-Key makes the request safe to send again: the same key with the same
    request answers with the intent it made the first time and changes nothing; the same key
    with another request is refused. The key is written with the intent, under a unique
    index per buyer, before the project's status and the fair's are checked: a request that
    collides with an earlier one (or with one still in flight, which it then waits for)
    rolls back and answers with that request's intent, whatever happened since. So two
    requests with one key at the same moment make one intent.

    The project is read while signing (deals.signing.write_intent), not loaded first: what it
    copies into the intent and whether it is published are read in the same statement.

    ``need_id`` and ``response_id`` name the procurement need and response signed from; only
    needs.service.sign_response passes them, after checking them.
    """
    buyer = permissions.require_buyer(buyer)
    if not isinstance(idempotency_key, str) or not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise InvalidInput(
            _l("请发送 Idempotency-Key 请求头：1 到 100 个可见 ASCII 字符，例如 UUID。"),
            code="idempotency_key_invalid",
            fields={"Idempotency-Key": [_l("1 到 100 个可见 ASCII 字符。")]},
        )
    note = note.strip()
    _check_request(amount_fen=amount_fen, note=note)
    organisation = buyer.organisation
    assert organisation is not None  # noqa: S101 - buyers always register with one
    fingerprint = _fingerprint(project_id, amount_fen, hall_id, note, response_id)
    signing = deal_signing.Signing(
        project_id=project_id, buyer_id=buyer.id, buyer_organisation_id=organisation.id,
        buyer_province=organisation.province, hall_id=hall_id, amount_fen=amount_fen,
        note=note, created_at=utcnow(), idempotency_key=idempotency_key,
        fingerprint=fingerprint, need_id=need_id, response_id=response_id,
    )
    try:
        signed = deal_signing.write_intent(signing)
    except IntegrityError:
        db.session.rollback()  # which expires the buyer: its id is in the signing
        replayed = _replay(signing.buyer_id, idempotency_key, fingerprint)
        if replayed is None:
            raise
        return replayed
    except deal_signing.Refused as refused:
        raise refused.answer() from refused
    # The intent as written, with its project's id and title and the buyer's organisation,
    # taken into the session as already stored, so that nothing loads it again. (Merged
    # rather than added: SQLite may hand out the id of an attempt that rolled back and is
    # still in the session.) The project's other columns load if something asks for them.
    project = Project(id=project_id, title=signed.project_title)
    make_transient_to_detached(project)
    stored = Intent(id=signed.intent_id, project=project, buyer_organisation=organisation,
                    **signed.columns)
    make_transient_to_detached(stored)
    intent = db.session.merge(stored, load=False)
    if intent.counted:
        # An intent not counted (its organisation is not verified) stays out of the ticker too.
        broadcast.deal_recorded(intent.fair_id, deal=_DEAL_EVENT.dump(intent))
    audience.record_intent(fair_id=intent.fair_id, buyer=buyer, project_id=project_id,
                           category=signed.columns.get("category"), hall_id=hall_id)
    return intent


def _check_request(*, amount_fen: int, note: str) -> None:
    """What a request must be, whenever it is sent; the API's schema refused malformed ones."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or not (
        0 < amount_fen <= MAX_DEAL_FEN
    ):
        raise InvalidInput(fields={"amount": [_l("金额须大于 0 且不超过 100000000.00。")]})
    if len(note) > MAX_NOTE_LENGTH:
        raise InvalidInput(fields={"note": [_l("最多 %(count)d 个字。", count=MAX_NOTE_LENGTH)]})


def _fingerprint(project_id: int, amount_fen: int, hall_id: int | None, note: str,
                 response_id: int | None = None) -> str:
    """What a request means, so that a retry can be told from a different request."""
    meaning: list[object] = [project_id, amount_fen, hall_id, note]
    if response_id is not None:  # earlier fingerprints stay as they were
        meaning.append(response_id)
    canonical = json.dumps(meaning, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(buyer_id: int, key: str, fingerprint: str) -> Intent | None:
    """The intent an earlier request with this key made, if the request was the same."""
    earlier = db.session.execute(
        select(IdempotencyKey.fingerprint, Intent)
        .join(Intent, Intent.id == IdempotencyKey.intent_id)
        .where(IdempotencyKey.buyer_id == buyer_id, IdempotencyKey.key == key)
    ).first()
    if earlier is None:
        return None
    if earlier.fingerprint != fingerprint:
        # 409: the request is well formed; it conflicts with what the key already stands for.
        raise Conflict(
            _l("这个 Idempotency-Key 已用于另一个请求，请换一个新的。"),
            code="idempotency_key_reused",
            fields={"Idempotency-Key": [_l("已用于另一个请求。")]},
        )
    intent: Intent = earlier.Intent
    return intent


# Retried and kept loaded as record_intent is: the answer is the intent as the withdrawal left it.
@use_case(retry=True, keep_loaded=True)
def withdraw_intent(intent: Intent, *, buyer: User | None) -> Intent:
    """The buyer takes back an intent; it leaves the totals. Withdrawing again changes nothing."""
    permissions.require_intent_buyer(buyer, intent)
    if not intent.is_active:
        return intent
    # The intent's row is locked first, as when it was recorded (see deals.totals); whoever
    # withdrew it first while this request waited for that lock has already reverted it.
    withdrawn = db.session.execute(
        update(Intent)
        .where(Intent.id == intent.id, Intent.status == IntentStatus.active)
        .values(status=IntentStatus.withdrawn, withdrawn_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(intent)
    if withdrawn and intent.counted:
        deal_totals.revert_intent(intent)
        if intent.secured:
            # It leaves the secured figures too, in the same change of the totals; its
            # deposit goes back below, and the refund's webhook unsecures it.
            deal_totals.move_secured(intent, -1, own_change=False)
        broadcast.totals_changed(intent.fair_id)
    if withdrawn:
        # Decided here, sent to Stripe once this commits (see deals.payments).
        payments.refund_deposits(intent)
    return intent


def access_intent(intent_id: int, user: User | None) -> Intent:
    """An intent the user may see: its buyer's, its exhibitor's, or any for organisers."""
    user = permissions.require_user(user)
    intent = db.session.get(Intent, intent_id)
    if intent is None or not permissions.can_view_intent(user, intent):
        raise NotFound(_l("没有这笔签约意向。"))
    return intent


@dataclass(frozen=True)
class IntentPage:
    items: list[Intent]
    total: int


def list_intents(fair: Fair, *, user: User | None, page: int = 1,
                 per_page: int = 50) -> IntentPage:
    """The intents of the fair the user may see, newest first."""
    query = _visible_intents(fair, user)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = db.session.scalars(
        query.order_by(Intent.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return IntentPage(items=list(items), total=total)


@dataclass(frozen=True)
class IntentSummary:
    """The active intents among those a user may see: how many, and worth how much."""

    deal_count: int
    amount_fen: int


def summarise_intents(fair: Fair, *, user: User | None) -> IntentSummary:
    visible = _visible_intents(fair, user).where(Intent.status == IntentStatus.active).subquery()
    deal_count, amount_fen = db.session.execute(
        select(func.count(), func.coalesce(func.sum(visible.c.amount_fen), 0))
    ).one()
    return IntentSummary(deal_count=deal_count, amount_fen=amount_fen)


def export_intents(fair: Fair, *, user: User | None) -> Iterator[Intent]:
    """Every intent of the fair the user may see, oldest first, read in batches."""
    query = _visible_intents(fair, user).order_by(Intent.id)
    return iter(db.session.scalars(query.execution_options(yield_per=500)))


def _visible_intents(fair: Fair, user: User | None) -> Select[tuple[Intent]]:
    """Organisers see every intent; an exhibitor those on its projects; a buyer its own."""
    user = permissions.require_user(user)
    query = select(Intent).where(Intent.fair_id == fair.id)
    if user.role is Role.organiser:
        return query
    if user.role is Role.buyer:
        return query.where(Intent.buyer_id == user.id)
    exhibitor = exhibitor_service.exhibitor_of(fair, user)
    if exhibitor is None:
        return query.where(false())
    return query.where(Intent.exhibitor_id == exhibitor.id)


# --- Verifying buyers' organisations ---------------------------------------------------------


# Retried: it takes the totals rows of several fairs, one fair after another, in fair order.
@use_case(retry=True)
def verify_organisation(organisation_id: int, *, organiser: User | None) -> Organisation:
    """An organiser verifies a buyer's organisation: its intents count in the totals from now
    on, those already signed included (each moves the totals, seq included). Verifying again
    changes nothing."""
    organiser = permissions.require_organisation_verifier(organiser)
    organisation = _lock_buyer_organisation(organisation_id)
    if organisation.is_verified:
        return organisation
    organisation.verified_at = utcnow()
    organisation.verified_by = organiser.id
    _count_intents_of(organisation, counted=True)
    return organisation


@use_case(retry=True)
def unverify_organisation(organisation_id: int, *, organiser: User | None) -> Organisation:
    """An organiser takes a verification back: the organisation's intents leave the totals and
    are recorded only, as before it was verified."""
    permissions.require_organisation_verifier(organiser)
    organisation = _lock_buyer_organisation(organisation_id)
    if not organisation.is_verified:
        return organisation
    organisation.verified_at = None
    organisation.verified_by = None
    _count_intents_of(organisation, counted=False)
    return organisation


def _lock_buyer_organisation(organisation_id: int) -> Organisation:
    """The organisation of a buyer, its row locked: signing reads it FOR SHARE (deals.signing),
    so an intent signed meanwhile is either seen below or sees the new verification."""
    buyer = select(User.id).where(User.organisation_id == Organisation.id,
                                  User.role == Role.buyer).exists()
    organisation = db.session.scalars(
        select(Organisation).where(Organisation.id == organisation_id, buyer)
        .with_for_update(of=Organisation).execution_options(populate_existing=True)
    ).first()
    if organisation is None:
        raise NotFound(_l("没有这个采购机构。"))
    return organisation


def _count_intents_of(organisation: Organisation, *, counted: bool) -> None:
    """Move the organisation's intents into the totals (or out), locked in the order signing
    takes them: each intent, then its fair's totals, a fair at a time."""
    db.session.flush()
    intents = db.session.scalars(
        select(Intent).options(lazyload("*"))
        .where(Intent.buyer_organisation_id == organisation.id, Intent.counted != counted)
        .order_by(Intent.fair_id, Intent.id).with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    deal_totals.lock_members([intent for intent in intents if intent.is_active])
    moved: set[int] = set()
    for intent in intents:
        intent.counted = counted
        if not intent.is_active:
            continue
        db.session.flush()
        if counted:
            deal_totals.apply_intent(intent)
        else:
            deal_totals.revert_intent(intent)
        if intent.secured:
            deal_totals.move_secured(intent, +1 if counted else -1, own_change=False)
        moved.add(intent.fair_id)
    for fair_id in sorted(moved):
        broadcast.totals_changed(fair_id)


@dataclass(frozen=True)
class BuyerOrganisation:
    """A buyer's organisation as the verification page lists it."""

    organisation: Organisation
    #: Active intents of its buyers (at any fair): counted, or waiting for verification.
    active_intents: int
    active_amount_fen: int


def list_buyer_organisations(*, organiser: User | None, verified: bool,
                             limit: int = 200) -> list[BuyerOrganisation]:
    """Buyers' organisations, verified or not, newest first, with their active intents."""
    permissions.require_organisation_verifier(organiser)
    buyer = select(User.id).where(User.organisation_id == Organisation.id,
                                  User.role == Role.buyer).exists()
    state = (Organisation.verified_at.is_not(None) if verified
             else Organisation.verified_at.is_(None))
    rows = db.session.execute(
        select(Organisation, func.count(Intent.id),
               func.coalesce(func.sum(Intent.amount_fen), 0))
        .outerjoin(Intent, (Intent.buyer_organisation_id == Organisation.id)
                   & (Intent.status == IntentStatus.active))
        .where(buyer, state).group_by(Organisation.id)
        .order_by(Organisation.id.desc()).limit(limit)
    ).all()
    return [BuyerOrganisation(organisation, count, amount) for organisation, count, amount in rows]
