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
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from audience.models import Event, Favourite, Kind, Rollup
from audience.service import Actor, day_of
from deals.models import Intent, IntentStatus
from exhibitors.models import Project, ProjectStatus
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
#: How often a server process asks whether a newer model was stored.
RECHECK_SECONDS = 10.0
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
    """One person's recent doings in a fair, their province and what they signed."""
    key = actor.key
    if key is None:
        return ranking.Profile(interactions=(), province=actor.province)
    whose = (Event.user_id == actor.user_id if actor.user_id is not None
             else Event.visitor == actor.visitor)
    rows = db.session.execute(
        select(Event.project_id, Event.kind, Event.at)
        .where(whose, Event.fair_id == fair_id, Event.kind.in_(EVENT_KINDS))
        .order_by(Event.at.desc(), Event.id.desc()).limit(PROFILE_EVENTS)).all()
    interactions = [ranking.Interaction(key, project_id, kind, as_utc(at), actor.province)
                    for project_id, kind, at in rows if project_id is not None]
    # Searches apart: only they carry data (JSON) worth decoding.
    searched = []
    for data, at in db.session.execute(
        select(Event.data, Event.at)
        .where(whose, Event.fair_id == fair_id, Event.kind == Kind.search.value)
        .order_by(Event.at.desc(), Event.id.desc()).limit(PROFILE_SEARCHES)
    ):
        category = ((data or {}).get("facets") or {}).get("category")
        if isinstance(category, str):
            searched.append(ranking.Searched(key, category, as_utc(at)))
    # Favourites are state: kept ones count even when their event was written long ago,
    # or not at all (under Do-Not-Track).
    owner = (Favourite.user_id == actor.user_id if actor.user_id is not None
             else Favourite.visitor == actor.visitor)
    for project_id, at in db.session.execute(
        select(Favourite.project_id, Favourite.created_at)
        .where(owner, Favourite.fair_id == fair_id)
    ):
        interactions.append(ranking.Interaction(key, project_id, Kind.favourite.value,
                                                as_utc(at), actor.province))
    signed: set[int] = set()
    if actor.user_id is not None:
        for project_id, at in db.session.execute(
            select(Intent.project_id, Intent.created_at)
            .where(Intent.buyer_id == actor.user_id, Intent.fair_id == fair_id,
                   Intent.status == IntentStatus.active)
        ):
            interactions.append(ranking.Interaction(key, project_id, "intent", as_utc(at),
                                                    actor.province))
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


@dataclass
class _Held:
    version: int
    model: ranking.Model
    checked: float


class Models:
    """This process's copies of the stored models. A request reads the copy it finds; a newer
    one replaces it whole (one assignment), so a rebuild never shows a request half a model."""

    def __init__(self) -> None:
        self._held: dict[int, _Held] = {}
        self._loading = threading.Lock()
        self._queued: set[int] = set()
        self._refreshing: set[int] = set()

    def get(self, fair_id: int) -> ranking.Model | None:
        held = self._held.get(fair_id)
        now = time.monotonic()
        if held is not None and now - held.checked < RECHECK_SECONDS:
            return held.model
        version = self._version(fair_id)
        if version is None and fair_id not in self._queued:
            # Never built: queue a build and answer from nothing meanwhile, never waiting
            # (in immediate mode, the unit tests', the build has happened on return).
            self._queued.add(fair_id)
            rebuild_task(fair_id)
            version = self._version(fair_id)
        if version is None:
            return None
        if held is not None and held.version == version:
            held.checked = now
            return held.model
        if held is not None:
            # A newer model was stored: this request answers from the one held, and a thread
            # loads the new one (a second or so of JSON), so that no request waits for it.
            held.checked = now
            self._load_later(fair_id)
            return held.model
        return self._load(fair_id)

    def _load(self, fair_id: int) -> ranking.Model | None:
        with self._loading:
            stored = db.session.scalar(select(StoredModel)
                                       .where(StoredModel.fair_id == fair_id))
            if stored is None:
                held = self._held.get(fair_id)
                return held.model if held else None
            model = ranking.Model.from_payload(json.loads(zlib.decompress(stored.payload)))
            self._held[fair_id] = _Held(version=stored.version, model=model,
                                        checked=time.monotonic())
            return model

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
    project: Project
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


def _still_published(fair_id: int, ids: Sequence[int]) -> set[int]:
    """Those of the projects still published, read now: a withdrawn project leaves every list
    at once, whatever the model, built minutes ago, still holds."""
    if not ids:
        return set()
    return set(db.session.scalars(select(Project.id).where(
        Project.id.in_(list(ids)), Project.fair_id == fair_id,
        Project.status == ProjectStatus.published)))


def _load(ids: Sequence[int]) -> dict[int, Project]:
    if not ids:
        return {}
    return {project.id: project for project in db.session.scalars(
        select(Project).options(selectinload(Project.media)).where(Project.id.in_(list(ids))))}


def _published(fair_id: int, ids: Sequence[int]) -> dict[int, Project]:
    return _load(sorted(_still_published(fair_id, ids)))


def recommendations_for(fair_id: int, *, actor: Actor, limit: int = 10,
                        exclude: Sequence[int] = ()) -> list[Recommendation]:
    """猜你喜欢: the projects the actor (a buyer, or a visitor's cookie) may like best, each
    with its reasons; never one they signed, never one not published."""
    limit = max(1, min(limit, MAX_LIMIT))
    model = models().get(fair_id)
    if model is None:
        return []
    profile = profile_of(fair_id, actor=actor)
    # A few more than asked: some may have been withdrawn since the model was built.
    ranked = ranking.rank(model, profile, limit=limit * 2 + 5, exclude=exclude)
    published = _still_published(fair_id, [model.items[p] for p in ranked.positions])
    positions = [position for position in ranked.positions
                 if model.items[position] in published][:limit]
    scored = ranking.explain(model, profile, ranked, positions)
    projects = _load([item.project_id for item in scored])
    return [Recommendation(project=projects[item.project_id], score=round(item.score, 4),
                           reasons=reasons_of(item, model=model, province=profile.province))
            for item in scored if item.project_id in projects]


@dataclass(frozen=True)
class Also:
    """A project page's "buyers also viewed / also signed", each with how many buyers."""

    viewed: list[tuple[Project, int]]
    signed: list[tuple[Project, int]]


def also_for(project: Project, *, actor: Actor | None = None) -> Also:
    """采购商还看了 / 还签了: projects that MIN_BUYERS or more of this project's own viewers
    (signers) also viewed (signed); leaving out what the viewer signed."""
    model = models().get(project.fair_id)
    if model is None:
        return Also(viewed=[], signed=[])
    viewed = model.also_viewed.get(project.id, [])
    signed = model.also_signed.get(project.id, [])
    published = _published(project.fair_id, [item for item, _count in [*viewed, *signed]])
    own: set[int] = set()
    if actor is not None and actor.user_id is not None:
        own = set(db.session.scalars(select(Intent.project_id).where(
            Intent.buyer_id == actor.user_id, Intent.fair_id == project.fair_id,
            Intent.status == IntentStatus.active)))
    return Also(
        viewed=[(published[item], count) for item, count in viewed
                if item in published and item not in own],
        signed=[(published[item], count) for item, count in signed
                if item in published and item not in own])


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
