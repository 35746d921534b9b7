"""The audience API: the beacon, favourites, share links, the portrait, one's own data."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_smorest import Blueprint

from audience import insights, recording, service
from audience.models import Share
from audience.schemas import BeaconAnswerSchema, BeaconSchema, FavouritesSchema, ShareSchema
from exhibitors.models import Project
from fair import service as fair_service
from fair.auth import current_user

blp = Blueprint("audience", __name__, url_prefix="/api/v1",
                description="What visitors do: events, favourites, shares, the portrait")


@blp.post("/events")
@blp.arguments(BeaconSchema)
@blp.response(202, BeaconAnswerSchema)
def beacon(data: dict[str, Any]) -> dict[str, Any]:
    """Record what only the browser sees (navigator.sendBeacon), at most 500 events."""
    actor = recording.recording_actor()
    if actor is None:
        return {"accepted": 0, "refused": [], "recording": False}
    recording.use_visitor()
    checked = service.check_beacon(data["events"], actor=actor)
    recording.record_many(checked.rows)
    return {"accepted": len(checked.rows), "refused": checked.refused, "recording": True}


@blp.put("/projects/<int:project_id>/favourite")
@blp.response(204)
def favourite(project_id: int) -> None:
    """Keep a project among your favourites (收藏); again is harmless."""
    recording.use_visitor()
    service.favourite_project(project_id, user=current_user(),
                              actor=recording.current_actor(),
                              record=recording.recording_actor() is not None)


@blp.delete("/projects/<int:project_id>/favourite")
@blp.response(204)
def unfavourite(project_id: int) -> None:
    """Take a project out of your favourites; again is harmless."""
    service.unfavourite_project(project_id, actor=recording.current_actor())


@blp.get("/me/favourites")
@blp.response(200, FavouritesSchema)
def my_favourites() -> dict[str, list[Project]]:
    """Your favourites (signed in, or this browser's visitor), newest first."""
    return {"items": [item.project for item in
                      service.list_favourites(actor=recording.current_actor())]}


@blp.post("/projects/<int:project_id>/share")
@blp.response(201, ShareSchema)
def share(project_id: int) -> dict[str, Any]:
    """A share link (分享) for a project: `/s/<code>`; visits through it count for you."""
    recording.use_visitor()
    made = service.share_project(project_id, user=current_user(),
                                 actor=recording.current_actor())
    return _share(made)


def _share(made: Share) -> dict[str, Any]:
    return {"code": made.code, "project_id": made.project_id, "visits": made.visits,
            "url": url_for("audience_pages.follow_share", code=made.code, _external=True)}


@blp.get("/fairs/<int:fair_id>/insights")
def fair_insights(fair_id: int) -> dict[str, Any]:
    """The portrait (画像) of the fair (organisers): visits, searches, rankings, funnels, halls
    and showcases."""
    return insights.fair_insights(fair_service.access_fair(fair_id), user=current_user())


@blp.get("/fairs/<int:fair_id>/insights/own")
def own_insights(fair_id: int) -> dict[str, Any]:
    """The funnel of your own projects (exhibitors); cells of fewer than 3 buyers read "<3"."""
    return insights.exhibitor_insights(fair_service.access_fair(fair_id), user=current_user())


@blp.get("/me/behaviour")
def my_behaviour() -> dict[str, Any]:
    """Everything recorded of your behaviour, as JSON (PIPL)."""
    return service.own_data(current_user(), visitor=_visitor())


@blp.delete("/me/behaviour")
@blp.response(204)
def delete_my_behaviour() -> None:
    """Delete your behaviour data: no raw event of yours remains (PIPL)."""
    recording.buffer().flush()  # what this process still holds goes first, then all of it
    service.delete_own_data(current_user(), visitor=_visitor())


def _visitor() -> str | None:
    return recording.visitor_id()
