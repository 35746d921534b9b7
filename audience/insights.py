"""The demand portrait (画像): the fair's figures for organisers, an exhibitor's own with the
cells of fewer than three buyers hidden. Read from the rollups only, never the raw events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, distinct, func, select

from audience.models import VISIT_KINDS, Kind, Reach, Rollup, SearchRollup
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


def _sum(kind: str | Sequence[str]) -> Any:
    kinds = [kind] if isinstance(kind, str) else list(kind)
    return func.coalesce(func.sum(Rollup.count).filter(Rollup.kind.in_(kinds)), 0)


def count_visits(fair_id: int) -> int:
    """The fair's online visits (线上观展人次): the catalogue opened and halls joined."""
    return int(db.session.scalar(
        select(func.coalesce(func.sum(Rollup.count), 0))
        .where(Rollup.fair_id == fair_id, Rollup.kind.in_(VISIT_KINDS))) or 0)


def fair_insights(fair: Fair, *, user: User | None) -> dict[str, Any]:
    """The organiser's portrait of the fair (GET /api/v1/fairs/{id}/insights)."""
    permissions.require_organiser(user)
    of_fair = Rollup.fair_id == fair.id
    by_day = db.session.execute(
        select(Rollup.day, _sum(VISIT_KINDS)).where(of_fair, Rollup.kind.in_(VISIT_KINDS))
        .group_by(Rollup.day).order_by(Rollup.day)).all()
    halls = dict(db.session.execute(
        select(Hall.id, Hall.name).where(Hall.fair_id == fair.id)).tuples().all())
    by_hall = db.session.execute(
        select(Rollup.hall_id, _sum(Kind.hall_visit.value), _sum(Kind.intent.value))
        .where(of_fair, Rollup.kind.in_((Kind.hall_visit.value, Kind.intent.value)))
        .group_by(Rollup.hall_id).order_by(Rollup.hall_id)).all()
    catalogue = db.session.scalar(select(_sum(Kind.visit.value)).where(of_fair)) or 0
    return {
        "fair_id": fair.id,
        "visits": {
            "total": sum(int(count) for _, count in by_day),
            "by_day": [{"day": day.isoformat(), "visits": int(count)} for day, count in by_day],
            "by_hall": [{"hall_id": None, "name": "catalogue", "visits": int(catalogue)}] + [
                {"hall_id": hall_id, "name": halls.get(hall_id, str(hall_id)),
                 "visits": int(visits)}
                for hall_id, visits, _ in by_hall if hall_id],
        },
        "searches": _searches(fair.id),
        "projects": {name: _ranking(fair.id, kind) for name, kind in (
            ("most_viewed", Kind.view.value), ("most_favourited", Kind.favourite.value),
            ("most_signed", Kind.intent.value))},
        "funnel": {"by_category": _funnel(fair.id, Rollup.category),
                   "by_province": _funnel(fair.id, Rollup.province)},
        "intents": {
            "by_hall": [{"hall_id": hall_id or None,
                         "name": halls.get(hall_id, "") if hall_id else "",
                         "visits": int(visits), "intents": int(intents)}
                        for hall_id, visits, intents in by_hall],
            "by_showcase": _showcases(fair.id, halls),
        },
    }


def _searches(fair_id: int) -> dict[str, list[dict[str, Any]]]:
    searches = func.sum(SearchRollup.searches)
    zero = func.sum(SearchRollup.zero_results)
    base = (select(SearchRollup.terms, searches, zero)
            .where(SearchRollup.fair_id == fair_id, SearchRollup.terms != "")
            .group_by(SearchRollup.terms))
    top = db.session.execute(base.order_by(searches.desc(), SearchRollup.terms).limit(TOP))
    unmet = db.session.execute(base.having(zero > 0).order_by(zero.desc(), SearchRollup.terms)
                               .limit(TOP))
    return {
        "top": [{"terms": terms, "searches": int(count), "zero_results": int(none)}
                for terms, count, none in top],
        "zero_results": [{"terms": terms, "searches": int(count), "zero_results": int(none)}
                         for terms, count, none in unmet],
    }


def _ranking(fair_id: int, kind: str) -> list[dict[str, Any]]:
    count = func.sum(Rollup.count)
    rows = db.session.execute(
        select(Rollup.project_id, Project.title, count)
        .join(Project, Project.id == Rollup.project_id)
        .where(Rollup.fair_id == fair_id, Rollup.kind == kind, Rollup.project_id != 0)
        .group_by(Rollup.project_id, Project.title).order_by(count.desc(), Rollup.project_id)
        .limit(TOP))
    return [{"project_id": project_id, "title": title, "count": int(total)}
            for project_id, title, total in rows]


def _funnel(fair_id: int, column: Any) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(column, *(_sum(kind) for kind in FUNNEL))
        .where(Rollup.fair_id == fair_id, Rollup.kind.in_(FUNNEL))
        .group_by(column).order_by(column)).all()
    return [{"key": key, **{kind: int(count) for kind, count in zip(FUNNEL, counts,
                                                                    strict=True)}}
            for key, *counts in rows]


def _showcases(fair_id: int, halls: dict[int, str]) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(Rollup.showcase_id, Showcase.hall_id, Project.title,
               _sum(Kind.hall_visit.value), _sum(Kind.intent.value))
        .join(Showcase, Showcase.id == Rollup.showcase_id)
        .join(Project, Project.id == Showcase.project_id)
        .where(Rollup.fair_id == fair_id, Rollup.showcase_id != 0,
               Rollup.kind.in_((Kind.hall_visit.value, Kind.intent.value)))
        .group_by(Rollup.showcase_id, Showcase.hall_id, Project.title)
        .order_by(Rollup.showcase_id)).all()
    return [{"showcase_id": showcase_id, "hall_id": hall_id, "hall": halls.get(hall_id, ""),
             "project": title, "visits": int(visits), "intents": int(intents)}
            for showcase_id, hall_id, title, visits, intents in rows]


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
        raise NotFound("Your organisation has not applied to this fair.")
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
