"""The recommendations API: 猜你喜欢 for the signed-in buyer or the visitor's cookie, and a
project's "buyers also viewed / also signed"."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from audience import recording
from exhibitors import service as exhibitor_service
from fair import service as fair_service
from fair.auth import current_user
from recommend import service
from recommend.schemas import (
    AlsoSchema,
    RecommendationsQuerySchema,
    RecommendationsSchema,
    WeeksSchema,
)

blp = Blueprint("recommend", __name__, url_prefix="/api/v1",
                description="Recommendations (猜你喜欢), each with its reasons")


@blp.get("/fairs/<int:fair_id>/recommendations")
@blp.arguments(RecommendationsQuerySchema, location="query")
@blp.response(200, RecommendationsSchema)
def recommendations(query: dict[str, Any], fair_id: int) -> dict[str, Any]:
    """Projects you may like (signed-in buyer, or this browser's visitor), with why; never one
    you signed or one not published."""
    fair = fair_service.access_fair(fair_id)
    return {"items": service.recommendations_for(fair.id, actor=recording.current_actor(),
                                                 limit=query["limit"])}


@blp.get("/projects/<int:project_id>/also")
@blp.response(200, AlsoSchema)
def also(project_id: int) -> dict[str, Any]:
    """Buyers who viewed (signed) this project also viewed (signed): 3 or more buyers each."""
    project = exhibitor_service.access_project(project_id, current_user())
    found = service.also_for(project, actor=recording.current_actor())
    return {"viewed": [{"project": p, "buyers": n} for p, n in found.viewed],
            "signed": [{"project": p, "buyers": n} for p, n in found.signed]}


@blp.get("/fairs/<int:fair_id>/insights/recommendations")
@blp.response(200, WeeksSchema)
def recommendation_weeks(fair_id: int) -> dict[str, Any]:
    """The portrait's line (organisers): recommendations shown, clicked and turned into an
    intent, per week."""
    fair = fair_service.access_fair(fair_id)
    return {"weeks": service.weekly_effect(fair, user=current_user())}
