"""The demand portrait (画像): the fair's figures for organisers, an exhibitor's own with the
cells of fewer than three buyers hidden. Read from the rollups only, never the raw events."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, distinct, func, select

from audience.models import VISIT_KINDS, Breakdown, Kind, Reach, Rollup, SearchRollup
from exhibitors import service as exhibitor_service
from exhibitors.models import Project
from fair import permissions
from fair.accounts.models import Role, User
from fair.errors import NotFound
from fair.extensions import db
from fair.models import Fair
from livehalls.models import Hall, Showcase

#: The funnel's steps, in order.
FUNNEL = (Kind.view.value, Kind.favourite.value, Kind.intent.value)
#: How many rows a ranking shows.
TOP = 10
#: A cell of an exhibitor's portrait stands for at least this many distinct buyers, or is
#: shown as "<3": no figure may single out one buyer (or two who know each other).
K_ANONYMITY = 3
HIDDEN = f"<{K_ANONYMITY}"
#: How long a process keeps a fair's search rankings. They are summed from the daily search
#: rows (a row per day and words: 150,000 for 30 days of 5,000 words), the one part of the
#: portrait whose cost grows with the days; the other figures are read fresh each time.
SEARCHES_FRESH_SECONDS = 10.0
_SEARCHES_KEPT = "fair.audience.searches"


#: The breakdowns' dimensions of a few values each (not projects: a fair has hundreds).
_FEW_VALUED = ("day", "hall", "showcase", "category", "province")


class _Breakdowns:
    """A fair's breakdowns along its few-valued dimensions, read in one query (some hundreds of
    rows), instead of a round trip per chart."""

    def __init__(self, fair_id: int) -> None:
        self.counts: dict[tuple[str, str, str], int] = {
            (dimension, key, kind): int(count)
            for dimension, key, kind, count in db.session.execute(
                select(Breakdown.dimension, Breakdown.key, Breakdown.kind, Breakdown.count)
                .where(Breakdown.fair_id == fair_id, Breakdown.dimension.in_(_FEW_VALUED)))}

    def by(self, dimension: str, kinds: Sequence[str]) -> list[tuple[Any, ...]]:
        """(value, count of each kind) rows by value, for the values any of the kinds has."""
        keys = sorted({key for (along, key, kind) in self.counts
                       if along == dimension and kind in kinds})
        return [(key, *(self.counts.get((dimension, key, kind), 0) for kind in kinds))
                for key in keys]


def count_visits(fair_id: int) -> int:
    """The fair's online visits (线上观展人次): the catalogue opened and halls joined."""
    return int(db.session.scalar(
        select(func.coalesce(func.sum(Breakdown.count), 0))
        .where(Breakdown.fair_id == fair_id, Breakdown.dimension == "day",
               Breakdown.kind.in_(VISIT_KINDS))) or 0)


def fair_insights(fair: Fair, *, user: User | None) -> dict[str, Any]:
    """The organiser's portrait of the fair (GET /api/v1/fairs/{id}/insights), read from the
    per-dimension breakdowns: a few rows each, whatever the number of events."""
    permissions.require_organiser(user)
    breakdowns = _Breakdowns(fair.id)
    _by = breakdowns.by
    by_day = [(day, int(visits)) for day, visits in _by("day", [VISIT_KINDS[0]])]
    hall_days = dict(_by("day", [VISIT_KINDS[1]]))
    days = sorted({day for day, _ in by_day} | set(hall_days))
    visits_by_day = {day: 0 for day in days}
    for day, visits in by_day:
        visits_by_day[day] += visits
    for day, visits in hall_days.items():
        visits_by_day[day] += int(visits)
    halls = dict(db.session.execute(
        select(Hall.id, Hall.name).where(Hall.fair_id == fair.id)).tuples().all())
    by_hall = [(int(key), int(visits), int(intents)) for key, visits, intents in _by(
        "hall", [Kind.hall_visit.value, Kind.intent.value])]
    by_hall.sort()
    catalogue = sum(int(count) for _, count in _by("hall", [Kind.visit.value]))
    return {
        "fair_id": fair.id,
        "visits": {
            "total": sum(visits_by_day.values()),
            "by_day": [{"day": day, "visits": visits} for day, visits in visits_by_day.items()],
            "by_hall": [{"hall_id": None, "name": "catalogue", "visits": catalogue}] + [
                {"hall_id": hall_id, "name": halls.get(hall_id, str(hall_id)),
                 "visits": visits}
                for hall_id, visits, _ in by_hall if hall_id],
        },
        "searches": _searches(fair.id),
        "projects": _rankings(fair.id, {"most_viewed": Kind.view.value,
                                        "most_favourited": Kind.favourite.value,
                                        "most_signed": Kind.intent.value}),
        "funnel": {"by_category": _funnel(breakdowns, "category"),
                   "by_province": _funnel(breakdowns, "province")},
        "intents": {
            "by_hall": [{"hall_id": hall_id or None,
                         "name": halls.get(hall_id, "") if hall_id else "",
                         "visits": visits, "intents": intents}
                        for hall_id, visits, intents in by_hall if visits or intents],
            "by_showcase": _showcases(breakdowns, halls),
        },
    }


def _searches(fair_id: int) -> dict[str, list[dict[str, Any]]]:
    """The fair's search rankings, as summed at most SEARCHES_FRESH_SECONDS ago here."""
    kept: dict[int, tuple[float, dict[str, list[dict[str, Any]]]]] = (
        current_app.extensions.setdefault(_SEARCHES_KEPT, {}))
    now = time.monotonic()
    found = kept.get(fair_id)
    if found is None or now - found[0] >= SEARCHES_FRESH_SECONDS:
        found = kept[fair_id] = (now, _rank_searches(fair_id))
    return copy.deepcopy(found[1])


def _rank_searches(fair_id: int) -> dict[str, list[dict[str, Any]]]:
    """The most searched words and those that found nothing most often: one pass over the
    fair's daily search rows (the largest table the portrait reads), ranked twice."""
    searches = func.sum(SearchRollup.searches).label("searches")
    zero = func.sum(SearchRollup.zero_results).label("zero")
    totals = (select(SearchRollup.terms, searches, zero)
              .where(SearchRollup.fair_id == fair_id, SearchRollup.terms != "")
              .group_by(SearchRollup.terms).subquery())
    ranked = select(
        totals.c.terms, totals.c.searches, totals.c.zero,
        func.row_number().over(order_by=(totals.c.searches.desc(), totals.c.terms))
        .label("top"),
        func.row_number().over(order_by=(totals.c.zero.desc(), totals.c.terms)).label("unmet"),
    ).subquery()
    rows = db.session.execute(select(ranked).where(
        (ranked.c.top <= TOP) | ((ranked.c.unmet <= TOP) & (ranked.c.zero > 0)))).all()

    def listed(rank: int, rows: list[Any]) -> list[dict[str, Any]]:
        return [{"terms": row.terms, "searches": int(row.searches),
                 "zero_results": int(row.zero)} for row in sorted(rows, key=lambda row: row[rank])]

    return {"top": listed(3, [row for row in rows if row.top <= TOP]),
            "zero_results": listed(4, [row for row in rows
                                       if row.unmet <= TOP and row.zero > 0])}


def _rankings(fair_id: int, kinds: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """The TOP projects of each kind (name -> kind), with their titles: two queries."""
    place = func.row_number().over(partition_by=Breakdown.kind,
                                   order_by=(Breakdown.count.desc(), Breakdown.key))
    ranked = (select(Breakdown.kind, Breakdown.key, Breakdown.count, place.label("place"))
              .where(Breakdown.fair_id == fair_id, Breakdown.kind.in_(list(kinds.values())),
                     Breakdown.dimension == "project", Breakdown.key != "0",
                     Breakdown.count > 0).subquery())
    rows = db.session.execute(select(ranked.c.kind, ranked.c.key, ranked.c.count)
                              .where(ranked.c.place <= TOP).order_by(ranked.c.place)).all()
    titles = dict(db.session.execute(select(Project.id, Project.title).where(
        Project.id.in_({int(row.key) for row in rows}))).tuples().all()) if rows else {}
    return {name: [{"project_id": int(row.key), "title": titles.get(int(row.key), row.key),
                    "count": int(row.count)} for row in rows if row.kind == kind]
            for name, kind in kinds.items()}


def _funnel(breakdowns: _Breakdowns, dimension: str) -> list[dict[str, Any]]:
    return [{"key": key, **{kind: int(count) for kind, count in zip(FUNNEL, counts,
                                                                    strict=True)}}
            for key, *counts in breakdowns.by(dimension, FUNNEL)]


def _showcases(breakdowns: _Breakdowns, halls: dict[int, str]) -> list[dict[str, Any]]:
    rows = [(int(key), int(visits), int(intents)) for key, visits, intents in breakdowns.by(
        "showcase", [Kind.hall_visit.value, Kind.intent.value]) if key != "0"]
    shown = {showcase_id: (hall_id, title) for showcase_id, hall_id, title in db.session.execute(
        select(Showcase.id, Showcase.hall_id, Project.title)
        .join(Project, Project.id == Showcase.project_id)
        .where(Showcase.id.in_([row[0] for row in rows])))} if rows else {}
    return [{"showcase_id": showcase_id, "hall_id": shown[showcase_id][0],
             "hall": halls.get(shown[showcase_id][0], ""), "project": shown[showcase_id][1],
             "visits": visits, "intents": intents}
            for showcase_id, visits, intents in sorted(rows) if showcase_id in shown]


# --- An exhibitor's own portrait -----------------------------------------------------------


def shown(count: int, buyers: int) -> int | str:
    """A cell as an exhibitor may see it: its count, or "<3" when fewer buyers make it."""
    return count if buyers >= K_ANONYMITY else HIDDEN


def exhibitor_insights(fair: Fair, *, user: User | None) -> dict[str, Any]:
    """The funnel of the exhibitor's own projects, by project and by buyer province; every
    cell behind fewer than three distinct buyers reads "<3"."""
    user = permissions.require_role(user, Role.exhibitor)
    exhibitor = exhibitor_service.exhibitor_of(fair, user)
    if exhibitor is None:
        raise NotFound(_l("贵单位尚未申请参加本届大会。"))
    projects = dict(db.session.execute(
        select(Project.id, Project.title).where(Project.exhibitor_id == exhibitor.id)
        .order_by(Project.id)).tuples().all())
    own = Rollup.project_id.in_(list(projects))
    counts = _cells(select(Rollup.project_id, Rollup.kind, func.sum(Rollup.count))
                    .where(Rollup.fair_id == fair.id, own, Rollup.kind.in_(FUNNEL))
                    .group_by(Rollup.project_id, Rollup.kind))
    buyers = _cells(select(Reach.project_id, Reach.kind, func.count(distinct(Reach.actor)))
                    .where(Reach.fair_id == fair.id, Reach.project_id.in_(list(projects)),
                           Reach.kind.in_(FUNNEL))
                    .group_by(Reach.project_id, Reach.kind))
    by_province = _cells(select(Rollup.province, Rollup.kind, func.sum(Rollup.count))
                         .where(Rollup.fair_id == fair.id, own, Rollup.kind.in_(FUNNEL))
                         .group_by(Rollup.province, Rollup.kind))
    province_buyers = _cells(
        select(Reach.province, Reach.kind, func.count(distinct(Reach.actor)))
        .where(Reach.fair_id == fair.id, Reach.project_id.in_(list(projects)),
               Reach.kind.in_(FUNNEL))
        .group_by(Reach.province, Reach.kind))
    return {
        "fair_id": fair.id,
        "by_project": [
            {"project_id": project_id, "title": title,
             **{kind: shown(counts.get((project_id, kind), 0),
                            buyers.get((project_id, kind), 0)) for kind in FUNNEL}}
            for project_id, title in projects.items()],
        "by_province": [
            {"key": province,
             **{kind: shown(by_province.get((province, kind), 0),
                            province_buyers.get((province, kind), 0)) for kind in FUNNEL}}
            for province in sorted({key for key, _ in by_province})],
    }


def _cells(query: Select[Any]) -> dict[tuple[Any, str], int]:
    return {(key, kind): int(value) for key, kind, value in db.session.execute(query)}


def as_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[list[Any]]:
    """A chart's rows as a table (for its CSV): a header, then the values."""
    return [list(columns)] + [[row.get(column, "") for column in columns] for row in rows]
