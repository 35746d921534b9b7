"""Procurement needs: publish, close and withdraw them; respond, shortlist, decline and sign;
match them to exhibitors; search them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, delete, func, insert, or_, select, true, update
from sqlalchemy.exc import IntegrityError

from deals import service as deal_service
from deals.models import IdempotencyKey, Intent, IntentStatus
from exhibitors import catalogue
from exhibitors import service as exhibitor_service
from exhibitors.models import Exhibitor, Project, ProjectStatus, ProjectTerm
from fair import permissions, tasks
from fair.accounts.models import Role, User
from fair.database import after_commit, as_utc, use_case, utcnow
from fair.errors import Conflict, Forbidden, InvalidInput, NotFound
from fair.extensions import db
from fair.models import Fair, FairStatus
from fair.money import format_yuan
from fair.reference import CATEGORIES, PROVINCES
from inbox import service as inbox
from needs.models import Need, NeedMatch, NeedResponse, NeedStatus, NeedTerm, ResponseStatus

#: The most responses a buyer may ask for.
MAX_RESPONSES = 100
MAX_NOTE_LENGTH = 500
#: Exhibitors told of a need when it opens, best matches first (config NEEDS_MATCH_LIMIT).
MATCH_LIMIT = 20
#: A buyer is told this long before a need's deadline.
CLOSING_NOTICE = dt.timedelta(hours=24)
EDITABLE = ("title", "description", "category", "province", "city", "budget_min_fen",
            "budget_max_fen", "deadline", "max_responses")


# --- Needs ----------------------------------------------------------------------------------


@use_case()
def create_need(fair: Fair, *, buyer: User | None, title: str, category: str, province: str,
                budget_min_fen: int, budget_max_fen: int, deadline: dt.datetime,
                max_responses: int, description: str = "", city: str = "",
                publish: bool = False) -> Need:
    """A verified buyer writes a need in a fair: a draft, or open at once with ``publish``."""
    buyer = permissions.require_verified_buyer(buyer)
    if fair.status is FairStatus.closed:
        raise Conflict(_l("本届大会已闭幕。"), code="fair_closed")
    assert buyer.organisation_id is not None  # noqa: S101 - buyers always have one
    need = Need(fair_id=fair.id, buyer_id=buyer.id, organisation_id=buyer.organisation_id,
                status=NeedStatus.draft, response_count=0)
    _apply(need, {"title": title, "description": description, "category": category,
                  "province": province, "city": city, "budget_min_fen": budget_min_fen,
                  "budget_max_fen": budget_max_fen, "deadline": deadline,
                  "max_responses": max_responses})
    db.session.add(need)
    if publish:
        _open(need)
    index_need(need)
    return need


@use_case()
def update_need(need: Need, *, buyer: User | None, changes: Mapping[str, Any]) -> Need:
    """The buyer edits its draft."""
    permissions.require_need_buyer(buyer, need)
    if need.status is not NeedStatus.draft:
        raise Conflict(_l("只有草稿状态的需求可以修改。"), code="need_not_draft")
    _apply(need, {name: value for name, value in changes.items() if name in EDITABLE})
    index_need(need)
    return need


def _apply(need: Need, values: Mapping[str, Any]) -> None:
    """Check and set a need's fields; a refusal names every field at fault."""
    merged = {name: getattr(need, name, None) for name in EDITABLE if name != "description"}
    if merged["deadline"] is not None:
        merged["deadline"] = as_utc(merged["deadline"])  # SQLite hands it back naive
    merged.update(values)
    errors: dict[str, list[LazyString]] = {}
    if not 2 <= len((merged["title"] or "").strip()) <= 200:
        errors["title"] = [_l("请填写 %(min)d 到 %(max)d 个字。", min=2, max=200)]
    if merged["category"] not in CATEGORIES:
        errors["category"] = [_l("未知的类别。")]
    if merged["province"] not in PROVINCES:
        errors["province"] = [_l("未知的省份代码。")]
    if len(merged["city"] or "") > 50:
        errors["city"] = [_l("最多 %(max)d 个字。", max=50)]
    low, high = merged["budget_min_fen"], merged["budget_max_fen"]
    if not isinstance(low, int) or low <= 0:
        errors["budget_min"] = [_l("金额须大于零。")]
    elif not isinstance(high, int) or high < low:
        errors["budget_max"] = [_l("预算上限不能低于预算下限。")]
    deadline = merged["deadline"]
    try:
        # In UTC, as stored; a moment at the edge of the calendar has no UTC equivalent.
        deadline = deadline.astimezone(dt.UTC) if deadline.tzinfo is not None else None
    except (AttributeError, OverflowError):
        deadline = None
    if not isinstance(deadline, dt.datetime):
        errors["deadline"] = [_l("请填写带时区的日期和时间。")]
    elif deadline <= utcnow():
        errors["deadline"] = [_l("截止时间须晚于现在。")]
    limit = merged["max_responses"]
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESPONSES:
        errors["max_responses"] = [_l("须在 %(min)s 到 %(max)s 之间。", min=1,
                                        max=MAX_RESPONSES)]
    elif limit < (need.response_count or 0):
        errors["max_responses"] = [_l("不能少于已收到的响应数。")]
    if errors:
        raise InvalidInput(fields=errors)
    need.title = merged["title"].strip()
    need.category, need.province = merged["category"], merged["province"]
    need.city = (merged["city"] or "").strip()
    need.budget_min_fen, need.budget_max_fen = low, high
    need.deadline = deadline
    need.max_responses = limit
    if "description" in values:
        need.description_source = values["description"] or ""
        need.description_html = exhibitor_service.render_description(need.description_source)


@use_case()
def open_need(need: Need, *, buyer: User | None) -> Need:
    """The buyer publishes its draft: the public sees it, matching exhibitors are told."""
    permissions.require_verified_buyer(buyer)
    permissions.require_need_buyer(buyer, need)
    if need.status is not NeedStatus.draft:
        raise Conflict(_l("只有草稿状态的需求可以发布。"), code="need_not_draft")
    if as_utc(need.deadline) <= utcnow():
        raise InvalidInput(fields={"deadline": [_l("截止时间须晚于现在。")]})
    _open(need)
    return need


def _open(need: Need) -> None:
    need.status = NeedStatus.open
    need.opened_at = utcnow()
    db.session.flush()
    need_id = need.id
    # Matching reads the catalogue in a session of its own, once the need is committed.
    after_commit(lambda: match_need_task(need_id))


@use_case()
def close_need(need: Need, *, buyer: User | None) -> Need:
    """The buyer stops taking responses; signing from those it has goes on."""
    permissions.require_need_buyer(buyer, need)
    if need.status is not NeedStatus.open:
        raise Conflict(_l("只有征集中的需求可以截止。"), code="need_not_open")
    need.status, need.closed_at = NeedStatus.closed, utcnow()
    return need


@use_case()
def withdraw_need(need: Need, *, buyer: User | None) -> Need:
    """The buyer takes a draft or open need back: it leaves the list; nobody responds to it."""
    permissions.require_need_buyer(buyer, need)
    if need.status not in (NeedStatus.draft, NeedStatus.open):
        raise Conflict(_l("只有草稿或征集中的需求可以撤回。"), code="need_not_open")
    need.status, need.closed_at = NeedStatus.withdrawn, utcnow()
    return need


def access_need(need_id: int, user: User | None) -> Need:
    need = db.session.get(Need, need_id)
    if need is None or not permissions.can_view_need(user, need):
        raise NotFound(_l("没有这条需求。"))
    return need


def needs_of_buyer(fair: Fair, user: User | None) -> Sequence[Need]:
    """The buyer's own needs in the fair, newest first."""
    user = permissions.require_role(user, Role.buyer)
    return db.session.scalars(select(Need).where(Need.fair_id == fair.id,
                                                 Need.buyer_id == user.id)
                              .order_by(Need.id.desc())).all()


# --- Search -----------------------------------------------------------------------------------


def index_need(need: Need) -> None:
    """Rewrite the need's search terms (the catalogue's: CJK characters and bigrams, words)."""
    db.session.flush()
    db.session.execute(delete(NeedTerm).where(NeedTerm.need_id == need.id))
    text = " ".join((need.title, need.city, catalogue.strip_tags(need.description_html)))
    terms = sorted(catalogue.terms_of(text))
    if terms:
        db.session.execute(insert(NeedTerm), [{"need_id": need.id, "term": term}
                                              for term in terms])


@dataclass(frozen=True)
class NeedQuery:
    """The public list's filters, as the catalogue's: words, category, province, budget."""

    q: str = ""
    category: str | None = None
    province: str | None = None
    min_budget_fen: int | None = None
    max_budget_fen: int | None = None
    page: int = 1
    per_page: int = 24


@dataclass
class NeedPage:
    items: list[Need]
    total: int
    facets: catalogue.Facets


def search_needs(fair: Fair, *, query: NeedQuery) -> NeedPage:
    """Open needs (then closed ones) of the fair matching the query, with facet counts: each
    facet counts the needs matching the words and every other filter.

    The facets are counted by the database, grouped by category, province, budget range and
    whether the budget filter passes, so that no need's row is read into Python but the page's.
    """
    where: list[Any] = [Need.fair_id == fair.id,
                        Need.status.in_((NeedStatus.open, NeedStatus.closed))]
    terms = catalogue.query_terms(query.q)
    for term in sorted(terms.exact):
        where.append(Need.id.in_(select(NeedTerm.need_id).where(NeedTerm.term == term)))
    for prefix in sorted(terms.prefixes):
        where.append(Need.id.in_(select(NeedTerm.need_id).where(
            NeedTerm.term >= prefix, NeedTerm.term < catalogue.successor(prefix))))
    in_budget: Any = true()
    if query.min_budget_fen is not None:
        in_budget = and_(in_budget, Need.budget_max_fen >= query.min_budget_fen)
    if query.max_budget_fen is not None:
        in_budget = and_(in_budget, Need.budget_min_fen <= query.max_budget_fen)
    bucket = case(*[(Need.budget_max_fen >= bound, index)
                    for index, bound in reversed(list(enumerate(catalogue.PRICE_BOUNDS)))
                    if index > 0], else_=0)
    passes = case((in_budget, 1), else_=0)
    groups = db.session.execute(
        select(Need.category, Need.province, bucket, passes, func.count()).where(*where)
        .group_by(Need.category, Need.province, bucket, passes)
    ).tuples().all()
    categories: Counter[str] = Counter()
    provinces: Counter[str] = Counter()
    prices: Counter[int] = Counter()
    total = 0
    for category, province, price_range, budget_passes, count in groups:
        in_category = query.category in (None, category)
        in_province = query.province in (None, province)
        if budget_passes and in_province:
            categories[category] += count
        if budget_passes and in_category:
            provinces[province] += count
        if in_category and in_province:
            prices[price_range] += count
        if budget_passes and in_category and in_province:
            total += count
    if query.category is not None:
        where.append(Need.category == query.category)
    if query.province is not None:
        where.append(Need.province == query.province)
    # Open ones first, nearest deadline first; then the closed, newest first.
    taking = and_(Need.status == NeedStatus.open, Need.deadline > utcnow())
    ids = db.session.scalars(
        select(Need.id).where(*where, in_budget)
        .order_by(case((taking, 0), else_=1), case((taking, Need.deadline), else_=None),
                  Need.id.desc())
        .limit(query.per_page).offset((query.page - 1) * query.per_page)
    ).all()
    found = {need.id: need for need in db.session.scalars(select(Need).where(Need.id.in_(ids)))}
    shown = {code for code, count in provinces.items() if count}
    if query.province is not None:
        shown.add(query.province)
    facets = catalogue.Facets(
        category={code: categories.get(code, 0) for code in CATEGORIES},
        province={code: provinces[code]
                  for code in sorted(shown, key=lambda code: (-provinces[code], code))},
        price=catalogue.price_ranges(prices),
    )
    return NeedPage(items=[found[need_id] for need_id in ids if need_id in found],
                    total=total, facets=facets)


# --- Responses ------------------------------------------------------------------------------


# Retried: two exhibitors taking the need's last places lock its row in turn.
@use_case(retry=True)
def respond_to_need(need: Need, *, user: User | None, project_id: int, price_fen: int,
                    note: str = "") -> NeedResponse:
    """An approved exhibitor answers an open need with one of its published projects."""
    fair = db.session.get(Fair, need.fair_id)
    assert fair is not None  # noqa: S101 - a need belongs to a fair
    exhibitor = exhibitor_service.exhibitor_of(fair, user)
    user = permissions.require_approved_exhibitor(user, exhibitor)
    assert exhibitor is not None  # noqa: S101 - checked just above
    note = _check_offer(price_fen, note)
    if not need.is_open:
        raise Conflict(_l("这条需求不再接受响应。"), code="need_not_open")
    project = db.session.get(Project, project_id)
    if project is None or project.exhibitor_id != exhibitor.id:
        raise Forbidden(_l("请用本单位的项目响应。"), code="not_yours")
    if project.status is not ProjectStatus.published:
        raise Conflict(_l("请先发布该项目，再用它响应。"), code="project_not_published")
    if db.session.scalar(select(NeedResponse.id).where(NeedResponse.need_id == need.id,
                                                      NeedResponse.project_id == project.id)):
        raise Conflict(_l("该项目已经响应过这条需求。"), code="already_responded")
    # The count moves in the statement that checks it: of two exhibitors racing for the last
    # place, the second finds none left (its update waits for the first's to commit).
    taken = db.session.execute(
        update(Need)
        .where(Need.id == need.id, Need.status == NeedStatus.open,
               Need.response_count < Need.max_responses)
        .values(response_count=Need.response_count + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken:
        raise Conflict(_l("这条需求的响应名额已满。"), code="need_full")
    response = NeedResponse(need_id=need.id, project_id=project.id, exhibitor_id=exhibitor.id,
                            price_fen=price_fen, note=note, status=ResponseStatus.submitted)
    db.session.add(response)
    try:
        db.session.flush()
    except IntegrityError as error:
        raise Conflict(_l("该项目已经响应过这条需求。"), code="already_responded") from error
    inbox.notify(need.buyer_id, kind="response_received", data={
        "need": need.title, "project": project.title,
        "exhibitor": exhibitor.organisation.name}, link=f"/needs/{need.id}",
        dedupe_key=f"response:{response.id}")
    return response


def _check_offer(price_fen: int, note: str) -> str:
    note = (note or "").strip()
    if isinstance(price_fen, bool) or not isinstance(price_fen, int) or price_fen <= 0:
        raise InvalidInput(fields={"price": [_l("金额须大于零。")]})
    if len(note) > MAX_NOTE_LENGTH:
        raise InvalidInput(fields={"note": [_l("最多 %(max)d 个字。", max=MAX_NOTE_LENGTH)]})
    return note


@use_case()
def update_response(response: NeedResponse, *, user: User | None, price_fen: int | None = None,
                    note: str | None = None) -> NeedResponse:
    """The exhibitor changes its offer, until the buyer has acted on it."""
    permissions.require_responder(user, response)
    if response.decided_at is not None or _signed(response):
        raise Conflict(_l("采购方已处理该响应，不能再修改。"), code="response_decided")
    if not response.need.is_open:
        raise Conflict(_l("这条需求不再接受响应。"), code="need_not_open")
    checked = _check_offer(response.price_fen if price_fen is None else price_fen,
                           response.note if note is None else note)
    if price_fen is not None:
        response.price_fen = price_fen
    response.note = checked
    response.updated_at = utcnow()
    return response


@use_case()
def shortlist_response(response: NeedResponse, *, buyer: User | None) -> NeedResponse:
    """The buyer shortlists a response; its exhibitor is told."""
    return _decide(response, buyer=buyer, status=ResponseStatus.shortlisted,
                   kind="response_shortlisted")


@use_case()
def decline_response(response: NeedResponse, *, buyer: User | None) -> NeedResponse:
    """The buyer declines a response: it can no longer become an intent; its exhibitor is told."""
    return _decide(response, buyer=buyer, status=ResponseStatus.declined,
                   kind="response_declined")


def _decide(response: NeedResponse, *, buyer: User | None, status: ResponseStatus,
            kind: str) -> NeedResponse:
    permissions.require_need_buyer(buyer, response.need)
    if response.status is status:
        return response
    if response.status is ResponseStatus.declined or _signed(response):
        raise Conflict(_l("该响应已经处理过。"), code="response_decided")
    response.status, response.decided_at = status, utcnow()
    _tell_exhibitor(response, kind=kind, dedupe_key=f"{kind}:{response.id}")
    return response


def _tell_exhibitor(response: NeedResponse, *, kind: str, dedupe_key: str) -> None:
    """Every user of the responding organisation."""
    users = db.session.scalars(select(User.id).where(
        User.organisation_id == response.exhibitor.organisation_id)).all()
    for user_id in users:
        inbox.notify(user_id, kind=kind, data={"need": response.need.title,
                                                "project": response.project.title},
                     link=f"/needs/{response.need_id}", dedupe_key=dedupe_key)


def _signed(response: NeedResponse) -> bool:
    return db.session.scalar(select(func.count()).select_from(Intent).where(
        Intent.response_id == response.id, Intent.status == IntentStatus.active)) > 0


def access_response(response_id: int, user: User | None) -> NeedResponse:
    response = db.session.get(NeedResponse, response_id)
    if response is None or not permissions.can_view_response(user, response):
        raise NotFound(_l("没有这条响应。"))
    return response


def list_responses(need: Need, *, user: User | None) -> list[NeedResponse]:
    """The need's responses the user may see: all for its buyer and organisers, an
    exhibitor's own for it, none for anyone else."""
    user = permissions.require_user(user)
    query = select(NeedResponse).where(NeedResponse.need_id == need.id)
    if not (permissions.is_organiser(user) or user.id == need.buyer_id):
        query = query.join(Exhibitor, Exhibitor.id == NeedResponse.exhibitor_id).where(
            Exhibitor.organisation_id == user.organisation_id, user.role == Role.exhibitor)
    return list(db.session.scalars(query.order_by(NeedResponse.id)).all())


def signed_intents(need: Need, *, user: User | None) -> list[Intent]:
    """The intents signed from the need's responses that the user may see."""
    if user is None:
        return []
    intents = db.session.scalars(select(Intent).where(Intent.need_id == need.id)
                                 .order_by(Intent.id)).all()
    return [intent for intent in intents if permissions.can_view_intent(user, intent)]


def sign_response(response: NeedResponse, *, buyer: User | None,
                  idempotency_key: str) -> Intent:
    """The buyer turns a response into an intent to sign, in one step, through the one signing
    path (deals.service.record_intent: its idempotency, totals and broadcast); the intent
    carries the need and the response, and the exhibitor is told."""
    need = response.need
    permissions.require_need_buyer(buyer, need)
    if response.status is ResponseStatus.declined:
        raise Conflict(_l("已婉拒的响应不能转为签约意向。"), code="response_declined")
    if need.status is NeedStatus.withdrawn:
        raise Conflict(_l("这条需求已撤回。"), code="need_withdrawn")
    earlier = db.session.scalars(
        select(IdempotencyKey.key).join(Intent, Intent.id == IdempotencyKey.intent_id)
        .where(Intent.response_id == response.id, Intent.status == IntentStatus.active)
    ).all()
    if earlier and idempotency_key not in earlier:
        raise Conflict(_l("该响应已转为签约意向。"), code="already_signed")
    response_id, need_id = response.id, need.id
    intent = deal_service.record_intent(
        response.project_id, buyer=buyer, amount_fen=response.price_fen,
        idempotency_key=idempotency_key, need_id=need_id, response_id=response_id)
    _record_signing(response_id)
    return intent


@use_case()
def _record_signing(response_id: int) -> None:
    response = db.session.get(NeedResponse, response_id)
    assert response is not None  # noqa: S101 - it was just signed
    if response.decided_at is None:
        response.decided_at = utcnow()
    _tell_exhibitor(response, kind="response_signed", dedupe_key=f"response_signed:{response.id}")


# --- Matching -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    project_id: int
    exhibitor_id: int
    score: int


def score_project(need: Need, *, category: str, province: str, price_fen: int, hits: int,
                  words: int) -> int:
    """How well a published project answers a need: its category (4), the need's region (2),
    the budget holding its price (2), and the share of the need's words it holds (up to 4)."""
    score = 4 if category == need.category else 0
    score += 2 if province == need.province else 0
    score += 2 if need.budget_min_fen <= price_fen <= need.budget_max_fen else 0
    if words:
        score += (4 * hits) // words
    return score


def match_candidates(need: Need, *, limit: int) -> list[Candidate]:
    """The exhibitors whose published projects match the need, each by its best project, best
    first: projects of the need's category, or holding at least two of its words in the
    catalogue's index."""
    words = catalogue.query_terms(need.title)
    terms = sorted(words.exact | words.prefixes)
    published = [ProjectTerm.fair_id == need.fair_id,
                 ProjectTerm.status == ProjectStatus.published]
    hits: dict[int, int] = {}
    if terms:
        hits = dict(db.session.execute(
            select(ProjectTerm.project_id, func.count())
            .where(*published, ProjectTerm.term.in_(terms))
            .group_by(ProjectTerm.project_id)
        ).tuples().all())
    worded = [project_id for project_id, count in hits.items() if count >= 2]
    rows = db.session.execute(
        select(Project.id, Project.exhibitor_id, Project.category, Project.province,
               Project.price_fen)
        .where(Project.fair_id == need.fair_id, Project.status == ProjectStatus.published,
               or_(Project.category == need.category, Project.id.in_(worded)))
    ).all()
    best: dict[int, Candidate] = {}
    for row in rows:
        score = score_project(need, category=row.category, province=row.province,
                              price_fen=row.price_fen, hits=hits.get(row.id, 0),
                              words=len(terms))
        held = best.get(row.exhibitor_id)
        if held is None or (score, -row.id) > (held.score, -held.project_id):
            best[row.exhibitor_id] = Candidate(row.id, row.exhibitor_id, score)
    ranked = sorted(best.values(), key=lambda found: (-found.score, found.project_id))
    return ranked[:limit]


@use_case()
def match_need(need_id: int, *, limit: int = MATCH_LIMIT) -> list[NeedMatch]:
    """Tell the best-matching exhibitors of a need that opened; again changes nothing."""
    need = db.session.get(Need, need_id)
    if need is None or need.status is not NeedStatus.open:
        return []
    known = set(db.session.scalars(select(NeedMatch.exhibitor_id)
                                   .where(NeedMatch.need_id == need.id)).all())
    made = []
    for found in match_candidates(need, limit=limit):
        if found.exhibitor_id in known:
            continue
        match = NeedMatch(need_id=need.id, exhibitor_id=found.exhibitor_id,
                          project_id=found.project_id, score=found.score)
        db.session.add(match)
        made.append(match)
    db.session.flush()
    for match in made:
        users = db.session.scalars(select(User.id).join(
            Exhibitor, Exhibitor.organisation_id == User.organisation_id)
            .where(Exhibitor.id == match.exhibitor_id)).all()
        for user_id in users:
            inbox.notify(user_id, kind="need_matched",
                         data={"need": need.title, "project": match.project.title},
                         link=f"/needs/{need.id}", dedupe_key=f"need_matched:{need.id}")
    return made


@tasks.task(retries=3, retry_delay=10)
def match_need_task(need_id: int) -> None:
    """Match a need that opened (queued after its commit)."""
    match_need(need_id, limit=int(current_app.config.get("NEEDS_MATCH_LIMIT", MATCH_LIMIT)))


def matching_needs(fair: Fair, *, user: User | None) -> list[NeedMatch]:
    """The open needs the exhibitor was matched to, newest first ("needs that match your
    projects")."""
    exhibitor = exhibitor_service.exhibitor_of(fair, user)
    if exhibitor is None or not permissions.owns_exhibitor(user, exhibitor):
        return []
    matches = db.session.scalars(
        select(NeedMatch).join(Need, Need.id == NeedMatch.need_id)
        .where(NeedMatch.exhibitor_id == exhibitor.id, Need.status == NeedStatus.open,
               Need.deadline > utcnow())
        .order_by(NeedMatch.need_id.desc())
    ).all()
    return list(matches)


# --- Deadlines ------------------------------------------------------------------------------


@use_case()
def pass_deadlines(now: dt.datetime | None = None) -> tuple[int, int]:
    """Close the open needs whose deadline passed, and tell buyers whose needs close within a
    day (once each); how many of each."""
    now = now or utcnow()
    closed = db.session.execute(
        update(Need).where(Need.status == NeedStatus.open, Need.deadline <= now)
        .values(status=NeedStatus.closed, closed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    closing = db.session.scalars(
        select(Need).where(Need.status == NeedStatus.open, Need.deadline > now,
                           Need.deadline <= now + CLOSING_NOTICE,
                           Need.closing_told_at.is_(None))
        .with_for_update(skip_locked=True)
    ).all()
    for need in closing:
        need.closing_told_at = now
        inbox.notify(need.buyer_id, kind="need_closing", data={"need": need.title},
                     link=f"/needs/{need.id}", dedupe_key=f"need_closing:{need.id}")
    return closed, len(closing)


@tasks.periodic_task(tasks.crontab(minute="*/10"))
def pass_deadlines_task() -> None:
    """Every ten minutes: close needs at their deadline, warn a day before."""
    pass_deadlines()


def budget_text(need: Need) -> str:
    """"50000.00–80000.00" for lists and exports."""
    return f"{format_yuan(need.budget_min_fen)}–{format_yuan(need.budget_max_fen)}"


def export_rows(fair: Fair, *, organiser: User | None) -> list[tuple[Need, NeedResponse | None,
                                                                     bool]]:
    """Every need of the fair (drafts too) with each of its responses, and whether the
    response became an active intent: the organisers' export."""
    permissions.require_organiser(organiser)
    needs = db.session.scalars(select(Need).where(Need.fair_id == fair.id)
                               .order_by(Need.id)).all()
    responses: dict[int, list[NeedResponse]] = {}
    for response in db.session.scalars(
        select(NeedResponse).join(Need, Need.id == NeedResponse.need_id)
        .where(Need.fair_id == fair.id).order_by(NeedResponse.id)
    ):
        responses.setdefault(response.need_id, []).append(response)
    signed = set(db.session.scalars(select(Intent.response_id).where(
        Intent.fair_id == fair.id, Intent.response_id.is_not(None),
        Intent.status == IntentStatus.active)))
    rows: list[tuple[Need, NeedResponse | None, bool]] = []
    for need in needs:
        answered = responses.get(need.id, [])
        rows.extend((need, response, response.id in signed) for response in answered)
        if not answered:
            rows.append((need, None, False))
    return rows


@dataclass(frozen=True)
class NeedFigures:
    """One category's or province's needs on the portrait; rates in whole percent."""

    key: str
    needs: int
    responses: int
    matched_needs: int
    signed_responses: int

    @property
    def match_rate(self) -> int:
        """Needs told to at least one exhibitor, of all published needs."""
        return self.matched_needs * 100 // self.needs if self.needs else 0

    @property
    def conversion_rate(self) -> int:
        """Responses that became an active intent, of all responses."""
        return self.signed_responses * 100 // self.responses if self.responses else 0


def need_figures(fair: Fair, *, organiser: User | None, by: str) -> list[NeedFigures]:
    """Published needs, responses, matches and conversions per category or per province
    (``by``), most needs first: the organisers' portrait."""
    permissions.require_organiser(organiser)
    column = {"category": Need.category, "province": Need.province}[by]
    published = [Need.fair_id == fair.id, Need.status != NeedStatus.draft,
                 Need.status != NeedStatus.withdrawn]
    needs = dict(db.session.execute(
        select(column, func.count()).where(*published).group_by(column)).tuples().all())
    responses = dict(db.session.execute(
        select(column, func.count()).join(NeedResponse, NeedResponse.need_id == Need.id)
        .where(*published).group_by(column)).tuples().all())
    matched = dict(db.session.execute(
        select(column, func.count(func.distinct(Need.id)))
        .join(NeedMatch, NeedMatch.need_id == Need.id).where(*published).group_by(column)
    ).tuples().all())
    signed = dict(db.session.execute(
        select(column, func.count(func.distinct(Intent.response_id)))
        .join(Intent, Intent.need_id == Need.id)
        .where(*published, Intent.status == IntentStatus.active).group_by(column)
    ).tuples().all())
    figures = [NeedFigures(key, count, responses.get(key, 0), matched.get(key, 0),
                           signed.get(key, 0)) for key, count in needs.items()]
    return sorted(figures, key=lambda figure: (-figure.needs, figure.key))
