"""The recommender's rules: what a model is built from, when it is rebuilt, what one person is
shown (never a project they signed or one not published) and why, in the page's language."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import selectinload

from audience.models import Event, Favourite, Kind, Rollup
from audience.service import Actor, day_of
from deals.models import Intent, IntentStatus
from exhibitors.models import Project, ProjectStatus
from exhibitors.schemas import ProjectSchema
from fair import permissions, tasks
from fair.accounts.models import User
from fair.database import after_commit, as_utc, use_case, utcnow
from fair.errors import NotFound
from fair.extensions import db
from fair.i18n import current_locale
from fair.models import Fair, FairStatus
from fair.reference import category_name, province_name
from recommend import ranking
from recommend.models import StoredModel

logger = logging.getLogger(__name__)

#: The kinds read from the audience's events; intents come from the deals themselves (the
#: `intent` event is their copy, and would count each twice).
EVENT_KINDS = (Kind.view.value, Kind.favourite.value, Kind.share.value)
#: How much of one person's past a profile reads: their most recent events.
PROFILE_EVENTS = 300
PROFILE_SEARCHES = 50
#: How often a server process asks whether a newer model was stored, and which projects are
#: still published (one query of ids): a withdrawn project leaves every list within this.
RECHECK_SECONDS = 10.0
#: How often a server process reloads the projects' cards (an edited title or price shows).
CARDS_SECONDS = 60.0
#: The most recommendations one request may ask for.
MAX_LIMIT = 50


# --- Reading what happened -----------------------------------------------------------------


def _actor_key(user_id: int | None, visitor: str | None) -> str | None:
    if user_id is not None:
        return f"u{user_id}"
    return f"v{visitor}" if visitor else None


def load_catalogue(fair_id: int) -> list[ranking.Item]:
    """The fair's published projects, in id order."""
    rows = db.session.execute(
        select(Project.id, Project.category, Project.title, Project.summary)
        .where(Project.fair_id == fair_id, Project.status == ProjectStatus.published)
        .order_by(Project.id)).all()
    return [ranking.Item(id=row[0], category=row[1], title=row[2], summary=row[3] or "")
            for row in rows]


@dataclass(frozen=True)
class History:
    """Everything a fair's recommender learns from."""

    interactions: list[ranking.Interaction]
    searched: list[ranking.Searched]


def load_history(fair_id: int) -> History:
    """A fair's views, favourites and shares (events), its active intents (deals) and the
    categories searched for."""
    interactions: list[ranking.Interaction] = []
    for user_id, visitor, project_id, kind, at, province in db.session.execute(
        select(Event.user_id, Event.visitor, Event.project_id, Event.kind, Event.at,
               Event.buyer_province)
        .where(Event.fair_id == fair_id, Event.kind.in_(EVENT_KINDS),
               Event.project_id.is_not(None))
    ):
        actor = _actor_key(user_id, visitor)
        if actor is not None:
            interactions.append(ranking.Interaction(actor, project_id, kind, as_utc(at),
                                                    province))
    for buyer_id, project_id, at, province in db.session.execute(
        select(Intent.buyer_id, Intent.project_id, Intent.created_at, Intent.buyer_province)
        .where(Intent.fair_id == fair_id, Intent.status == IntentStatus.active)
    ):
        interactions.append(ranking.Interaction(f"u{buyer_id}", project_id, "intent",
                                                as_utc(at), province))
    searched = [
        ranking.Searched(actor, category, as_utc(at))
        for actor, category, at in _searches(select(Event.user_id, Event.visitor, Event.data,
                                                    Event.at)
                                             .where(Event.fair_id == fair_id,
                                                    Event.kind == Kind.search.value))
    ]
    return History(interactions=interactions, searched=searched)


def _searches(query: object) -> list[tuple[str, str, dt.datetime]]:
    found = []
    for user_id, visitor, data, at in db.session.execute(query):  # type: ignore[call-overload]
        category = ((data or {}).get("facets") or {}).get("category")
        actor = _actor_key(user_id, visitor)
        if actor and isinstance(category, str):
            found.append((actor, category, at))
    return found


def profile_of(fair_id: int, *, actor: Actor) -> ranking.Profile:
    """One person's recent doings in a fair, their province and what they signed: two
    queries, their latest events (views, favourites, shares, searches) and their kept
    favourites with their active intents."""
    key = actor.key
    if key is None:
        return ranking.Profile(interactions=(), province=actor.province)
    whose = (Event.user_id == actor.user_id if actor.user_id is not None
             else Event.visitor == actor.visitor)
    interactions: list[ranking.Interaction] = []
    searched = []
    for project_id, kind, at, data in db.session.execute(
        select(Event.project_id, Event.kind, Event.at, Event.data)
        .where(whose, Event.fair_id == fair_id,
               Event.kind.in_((*EVENT_KINDS, Kind.search.value)))
        .order_by(Event.at.desc(), Event.id.desc()).limit(PROFILE_EVENTS + PROFILE_SEARCHES)
    ):
        if kind == Kind.search.value:
            category = ((data or {}).get("facets") or {}).get("category")
            if isinstance(category, str) and len(searched) < PROFILE_SEARCHES:
                searched.append(ranking.Searched(key, category, as_utc(at)))
        elif project_id is not None and len(interactions) < PROFILE_EVENTS:
            interactions.append(ranking.Interaction(key, project_id, kind, as_utc(at),
                                                    actor.province))
    # Favourites are state: kept ones count even when their event was written long ago,
    # or not at all (under Do-Not-Track).
    owner = (Favourite.user_id == actor.user_id if actor.user_id is not None
             else Favourite.visitor == actor.visitor)
    kept = select(Favourite.project_id, Favourite.created_at,
                  literal(Kind.favourite.value).label("kind")
                  ).where(owner, Favourite.fair_id == fair_id)
    if actor.user_id is not None:
        kept = union_all(kept, select(Intent.project_id, Intent.created_at,
                                      literal("intent").label("kind"))
                         .where(Intent.buyer_id == actor.user_id, Intent.fair_id == fair_id,
                                Intent.status == IntentStatus.active))
    signed: set[int] = set()
    for project_id, at, kind in db.session.execute(kept):
        interactions.append(ranking.Interaction(key, project_id, kind, as_utc(at),
                                                actor.province))
        if kind == "intent":
            signed.add(project_id)
    return ranking.Profile(interactions=interactions, searched=searched,
                           province=actor.province, signed=frozenset(signed))


# --- Building and keeping the model ----------------------------------------------------------


@dataclass(frozen=True)
class Built:
    fair_id: int
    version: int
    projects: int
    interactions: int
    seconds: float


def build_model(fair_id: int) -> ranking.Model:
    """A fresh model of the fair from what is in the database now."""
    history = load_history(fair_id)
    return ranking.build(history.interactions, load_catalogue(fair_id), now=utcnow())


@use_case()
def rebuild(fair_id: int) -> Built:
    """Build the fair's model and store it; every server process picks it up within
    RECHECK_SECONDS. The requests served meanwhile keep reading the model they had."""
    if db.session.get(Fair, fair_id) is None:
        raise NotFound(_l("没有这届大会。"))
    started = time.perf_counter()
    history = load_history(fair_id)
    catalogue = load_catalogue(fair_id)
    model = ranking.build(history.interactions, catalogue, now=utcnow())
    payload = zlib.compress(json.dumps(model.to_payload(), separators=(",", ":")).encode())
    seconds = time.perf_counter() - started
    stored = db.session.get(StoredModel, fair_id, with_for_update=True)
    if stored is None:
        stored = StoredModel(fair_id=fair_id, version=1, built_at=model.built_at,
                             seconds=round(seconds), payload=payload)
        db.session.add(stored)
    else:
        stored.version += 1
        stored.built_at, stored.seconds, stored.payload = model.built_at, round(seconds), payload
    db.session.flush()
    # This process serves the new model from the next request; the others within
    # RECHECK_SECONDS, when they see the version move.
    held = models()
    after_commit(lambda: held.forget(fair_id))
    return Built(fair_id=fair_id, version=stored.version, projects=len(catalogue),
                 interactions=len(history.interactions), seconds=seconds)


@tasks.task()
def rebuild_task(fair_id: int) -> None:
    """Rebuild a fair's model on the task queue."""
    rebuild(fair_id)


@tasks.periodic_task(tasks.crontab(minute="*/5"))
def rebuild_open_fairs() -> None:
    """Every five minutes: the model of every open fair, with what its visitors did since."""
    for fair_id in db.session.scalars(select(Fair.id).where(Fair.status == FairStatus.open)):
        rebuild(fair_id)


@dataclass(frozen=True)
class Card:
    """A published project as the lists show it, kept in memory beside the model so that a
    request loads no project: what the strips print, and its API body (ProjectSchema), dumped
    when the cards are loaded."""

    id: int
    title: str
    category: str
    province: str
    price_fen: int
    body: dict[str, Any] = field(repr=False)


def load_cards(fair_id: int) -> dict[int, Card]:
    """The cards of a fair's published projects."""
    schema = ProjectSchema()
    projects = db.session.scalars(
        select(Project).options(selectinload(Project.media))
        .where(Project.fair_id == fair_id, Project.status == ProjectStatus.published))
    return {project.id: Card(id=project.id, title=project.title, category=project.category,
                             province=project.province, price_fen=project.price_fen,
                             body=schema.dump(project))
            for project in projects}


def published_ids(fair_id: int) -> frozenset[int]:
    return frozenset(db.session.scalars(select(Project.id).where(
        Project.fair_id == fair_id, Project.status == ProjectStatus.published)))


@dataclass(frozen=True)
class Serving:
    """What a request of a fair is answered from: the model, the projects' cards, and which of
    them are published (read at most RECHECK_SECONDS ago). Replaced whole, never changed."""

    version: int
    model: ranking.Model
    cards: dict[int, Card]
    published: frozenset[int]

    def shown(self, ids: Sequence[int]) -> list[Card]:
        """The cards of those projects that are published, in their order."""
        return [self.cards[item] for item in ids
                if item in self.published and item in self.cards]


@dataclass
class _Held:
    serving: Serving
    checked: float
    cards_at: float


class Models:
    """This process's copies of the stored models, with the cards of the projects and the ids
    of the published ones. A request reads the copy it finds; a newer one replaces it whole
    (one assignment), so a rebuild never shows a request half a model. Once every
    RECHECK_SECONDS a request asks for the stored version and the published ids (two small
    queries); newer models and cards are loaded by a thread while requests answer from the
    copy held."""

    def __init__(self) -> None:
        self._held: dict[int, _Held] = {}
        self._loading = threading.Lock()
        self._queued: set[int] = set()
        self._refreshing: set[int] = set()

    def get(self, fair_id: int) -> Serving | None:
        held = self._held.get(fair_id)
        now = monotonic()
        if held is not None and now - held.checked < RECHECK_SECONDS:
            return held.serving
        version = self._version(fair_id)
        if version is None and fair_id not in self._queued:
            # Never built: queue a build and answer from nothing meanwhile, never waiting
            # (in immediate mode, the unit tests', the build has happened on return).
            self._queued.add(fair_id)
            rebuild_task(fair_id)
            version = self._version(fair_id)
        if version is None:
            return None
        if held is None:
            return self._load(fair_id)
        # The projects withdrawn since: out of every list from now on.
        serving = Serving(version=held.serving.version, model=held.serving.model,
                          cards=held.serving.cards, published=published_ids(fair_id))
        if self._held.get(fair_id) is held:  # unless a thread has just loaded a newer one
            self._held[fair_id] = _Held(serving=serving, checked=now, cards_at=held.cards_at)
        if held.serving.version != version or now - held.cards_at >= CARDS_SECONDS:
            # A newer model was stored, or the cards are due: this request answers from the
            # copy held, and a thread loads the new one (a second or so), so no request waits.
            self._load_later(fair_id)
        return serving

    def _load(self, fair_id: int) -> Serving | None:
        with self._loading:
            held = self._held.get(fair_id)
            stored = db.session.scalar(select(StoredModel)
                                       .where(StoredModel.fair_id == fair_id))
            if stored is None:
                return held.serving if held else None
            model = (held.serving.model if held and held.serving.version == stored.version
                     else ranking.Model.from_payload(json.loads(zlib.decompress(stored.payload))))
            serving = Serving(version=stored.version, model=model, cards=load_cards(fair_id),
                              published=published_ids(fair_id))
            now = monotonic()
            self._held[fair_id] = _Held(serving=serving, checked=now, cards_at=now)
            return serving

    def _load_later(self, fair_id: int) -> None:
        if fair_id in self._refreshing:
            return
        self._refreshing.add(fair_id)
        app = current_app._get_current_object()  # type: ignore[attr-defined]

        def load() -> None:
            try:
                with app.app_context():
                    self._load(fair_id)
            except Exception:
                logger.exception("Loading the recommendations of fair %s failed.", fair_id)
            finally:
                self._refreshing.discard(fair_id)

        threading.Thread(target=load, name="recommend-load", daemon=True).start()

    @staticmethod
    def _version(fair_id: int) -> int | None:
        version: int | None = db.session.scalar(
            select(StoredModel.version).where(StoredModel.fair_id == fair_id))
        return version

    def forget(self, fair_id: int | None = None) -> None:
        """Drop this process's copy (of one fair, or all): the next request reads afresh."""
        if fair_id is None:
            self._held.clear()
        else:
            self._held.pop(fair_id, None)


EXTENSION_KEY = "fair.recommend"


def models() -> Models:
    found: Models = current_app.extensions.setdefault(EXTENSION_KEY, Models())
    return found


# --- Serving -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    code: str
    text: str


@dataclass(frozen=True)
class Recommendation:
    project: Card
    score: float
    reasons: list[Reason]


def reasons_of(scored: ranking.Scored, *, model: ranking.Model, province: str | None
               ) -> list[Reason]:
    """Why, in the page's language. A count of buyers is said only when MIN_BUYERS or more
    distinct buyers make it: no one buyer's choice can be read from a reason."""
    found = []
    if province and scored.province_signers >= ranking.MIN_BUYERS:
        found.append(Reason("province_signed", _(
            "%(province)s的 %(count)d 位采购商也签约了此项目",
            province=province_name(province, _locale()), count=scored.province_signers)))
    if scored.own == Kind.favourite.value:
        # One of their own favourites, not signed yet: that is the reason, not a neighbour.
        found.append(Reason("kept", _("您收藏了此项目，尚未签约")))
    elif scored.because is not None:
        project_id, kind = scored.because
        title = model.titles[model.index[project_id]]
        if kind == Kind.favourite.value:
            found.append(Reason("favourited", _("因为您收藏了「%(title)s」", title=title)))
        elif kind == "intent":
            found.append(Reason("signed", _("因为您签约了「%(title)s」", title=title)))
        elif kind == Kind.share.value:
            found.append(Reason("shared", _("因为您分享了「%(title)s」", title=title)))
        else:
            found.append(Reason("viewed", _("因为您看过「%(title)s」", title=title)))
    if scored.category:
        found.append(Reason("category", _("您常看的类别：%(category)s",
                                          category=category_name(scored.category, _locale()))))
    if scored.own is not None and not found:
        found.append(Reason("seen", _("您看过此项目，尚未签约")))
    if not found:
        found.append(Reason("popular", _("采购商关注度高的项目")))
    return found


def _locale() -> str:
    return current_locale()


def recommendations_for(fair_id: int, *, actor: Actor, limit: int = 10,
                        exclude: Sequence[int] = ()) -> list[Recommendation]:
    """猜你喜欢: the projects the actor (a buyer, or a visitor's cookie) may like best, each
    with its reasons; never one they signed (read now), never one not published (read at
    most RECHECK_SECONDS ago)."""
    limit = max(1, min(limit, MAX_LIMIT))
    serving = models().get(fair_id)
    if serving is None:
        return []
    model = serving.model
    profile = profile_of(fair_id, actor=actor)
    # A few more than asked: some may have been withdrawn since the model was built.
    ranked = ranking.rank(model, profile, limit=limit * 2 + 5, exclude=exclude)
    positions = [position for position in ranked.positions
                 if model.items[position] in serving.published
                 and model.items[position] in serving.cards][:limit]
    return [Recommendation(project=serving.cards[item.project_id], score=round(item.score, 4),
                           reasons=reasons_of(item, model=model, province=profile.province))
            for item in ranking.explain(model, profile, ranked, positions)]


@dataclass(frozen=True)
class Also:
    """A project page's "buyers also viewed / also signed", each with how many buyers."""

    viewed: list[tuple[Card, int]]
    signed: list[tuple[Card, int]]


def also_for(project: Project, *, actor: Actor | None = None) -> Also:
    """采购商还看了 / 还签了: projects that MIN_BUYERS or more of this project's own viewers
    (signers) also viewed (signed); leaving out what the viewer signed."""
    serving = models().get(project.fair_id)
    if serving is None:
        return Also(viewed=[], signed=[])
    viewed = serving.model.also_viewed.get(project.id, [])
    signed = serving.model.also_signed.get(project.id, [])
    own: set[int] = set()
    if actor is not None and actor.user_id is not None and (viewed or signed):
        own = set(db.session.scalars(select(Intent.project_id).where(
            Intent.buyer_id == actor.user_id, Intent.fair_id == project.fair_id,
            Intent.status == IntentStatus.active)))

    def shown(pairs: list[tuple[int, int]]) -> list[tuple[Card, int]]:
        counts = dict(pairs)
        return [(card, counts[card.id])
                for card in serving.shown([item for item, _count in pairs if item not in own])]

    return Also(viewed=shown(viewed), signed=shown(signed))


# --- The portrait's line -------------------------------------------------------------------


@dataclass(frozen=True)
class Week:
    """A week (its Monday, the fair's local date) of recommendations: lists shown, projects
    opened from them, and intents signed for a project its buyer had opened from one."""

    week: dt.date
    shown: int
    clicked: int
    intents: int


def weekly_effect(fair: Fair, *, user: User | None) -> list[Week]:
    """The organiser's line of the portrait: recommendations shown, clicked and turned into an
    intent, per week. Shown and clicked come from the rollups; an intent counts once, in the
    week it was signed, when its buyer had opened its project from a recommendation before."""
    permissions.require_organiser(user)
    weeks: dict[dt.date, list[int]] = {}

    def monday(day: dt.date) -> dt.date:
        return day - dt.timedelta(days=day.weekday())

    for day, kind, count in db.session.execute(
        select(Rollup.day, Rollup.kind, func.sum(Rollup.count))
        .where(Rollup.fair_id == fair.id, Rollup.kind.in_(
            (Kind.recommendation_shown.value, Kind.recommendation_click.value)))
        .group_by(Rollup.day, Rollup.kind)
    ):
        row = weeks.setdefault(monday(day), [0, 0, 0])
        row[0 if kind == Kind.recommendation_shown.value else 1] += int(count)
    clicks = db.session.execute(
        select(Event.user_id, Event.project_id, func.min(Event.at))
        .where(Event.fair_id == fair.id, Event.kind == Kind.recommendation_click.value,
               Event.user_id.is_not(None))
        .group_by(Event.user_id, Event.project_id)).all()
    first_click = {(user_id, project_id): as_utc(at) for user_id, project_id, at in clicks}
    if first_click:
        for buyer_id, project_id, signed_at in db.session.execute(
            select(Intent.buyer_id, Intent.project_id, Intent.created_at)
            .where(Intent.fair_id == fair.id,
                   Intent.buyer_id.in_({user_id for user_id, _p in first_click}))
        ):
            clicked = first_click.get((buyer_id, project_id))
            if clicked is not None and clicked <= as_utc(signed_at):
                weeks.setdefault(monday(day_of(as_utc(signed_at))), [0, 0, 0])[2] += 1
    return [Week(week=week, shown=row[0], clicked=row[1], intents=row[2])
            for week, row in sorted(weeks.items())]
