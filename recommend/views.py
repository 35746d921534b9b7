"""The recommendations on the pages: the 猜你喜欢 strip (home page, catalogue), a project page's
"采购商还看了 / 还签了", and the link a recommendation is opened through (counted as a click)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, url_for
from werkzeug.wrappers import Response

from audience import recording
from audience import service as audience_service
from audience.models import Kind
from exhibitors import service as exhibitor_service
from exhibitors.models import Project
from fair.auth import current_user
from fair.models import Fair
from recommend import service

bp = Blueprint("recommend_pages", __name__, template_folder="templates")

#: Projects in a page's strip.
STRIP = 6


@bp.get("/recommended/<int:project_id>", endpoint="follow")
def follow(project_id: int) -> Response:
    """A project opened from a recommendation: counted, then its page."""
    project = exhibitor_service.access_project(project_id, current_user())
    actor = recording.recording_actor()
    if actor is not None:
        recording.use_visitor()
        recording.record(audience_service.event_row(
            Kind.recommendation_click, fair_id=project.fair_id, actor=actor,
            project_id=project.id, category=project.category))
    return redirect(url_for("exhibitor_pages.project", project_id=project.id))


def strip_for(fair: Fair, *, exclude: int | None = None) -> list[service.Recommendation]:
    """The strip of a page: this visitor's recommendations, their showing recorded."""
    found = service.recommendations_for(fair.id, actor=recording.current_actor(), limit=STRIP,
                                        exclude=() if exclude is None else (exclude,))
    actor = recording.recording_actor()
    if found and actor is not None:
        recording.use_visitor()
        recording.record(audience_service.event_row(
            Kind.recommendation_shown, fair_id=fair.id, actor=actor,
            data={"projects": [item.project.id for item in found]}))
    return found


def also_for(project: Project) -> service.Also:
    return service.also_for(project, actor=recording.current_actor())


def weeks_for(fair: Fair) -> list[list[Any]]:
    """The portrait's table of recommendations per week (organisers)."""
    return [[week.week.isoformat(), week.shown, week.clicked, week.intents]
            for week in service.weekly_effect(fair, user=current_user())]


def init_app(app: Flask) -> None:
    """Pages below this package reach the recommendations through these template globals."""

    @app.context_processor
    def recommendations() -> dict[str, Any]:
        return {"recommended_strip": strip_for, "also_for_project": also_for,
                "recommendation_weeks": weeks_for}
