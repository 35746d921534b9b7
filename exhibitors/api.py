"""Exhibitor and project API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_smorest import Blueprint

from exhibitors import service
from exhibitors.models import Exhibitor, Project
from exhibitors.schemas import (
    ExhibitorSchema,
    ProjectInputSchema,
    ProjectSchema,
    ProjectUpdateSchema,
)
from fair import service as fair_service
from fair.auth import current_user

blp = Blueprint("exhibitors", __name__, url_prefix="/api/v1",
                description="Exhibitors and their projects")


@blp.post("/fairs/<int:fair_id>/exhibitors")
@blp.response(201, ExhibitorSchema)
def apply(fair_id: int) -> Exhibitor:
    """Apply to the fair with the signed-in exhibitor's organisation."""
    return service.apply_to_fair(fair_service.access_fair(fair_id), user=current_user())


@blp.get("/fairs/<int:fair_id>/exhibitors")
@blp.response(200, ExhibitorSchema(many=True))
def list_exhibitors(fair_id: int) -> Sequence[Exhibitor]:
    """Every application to the fair (organisers)."""
    return service.list_exhibitors(fair_service.access_fair(fair_id), organiser=current_user())


@blp.post("/exhibitors/<int:exhibitor_id>/approve")
@blp.response(200, ExhibitorSchema)
def approve(exhibitor_id: int) -> Exhibitor:
    """Approve an application (organisers)."""
    return service.approve_exhibitor(service.access_exhibitor(exhibitor_id),
                                     organiser=current_user())


@blp.post("/exhibitors/<int:exhibitor_id>/reject")
@blp.response(200, ExhibitorSchema)
def reject(exhibitor_id: int) -> Exhibitor:
    """Reject an application (organisers)."""
    return service.reject_exhibitor(service.access_exhibitor(exhibitor_id),
                                    organiser=current_user())


@blp.post("/fairs/<int:fair_id>/projects")
@blp.arguments(ProjectInputSchema)
@blp.response(201, ProjectSchema)
def create_project(data: dict[str, Any], fair_id: int) -> Project:
    """Create a draft project (approved exhibitors)."""
    return service.create_project(
        fair_service.access_fair(fair_id),
        user=current_user(),
        title=data["title"],
        category=data["category"],
        price_fen=data["price_fen"],
        summary=data["summary"],
        description=data["description"],
        tags=data["tags"],
    )


@blp.get("/projects/<int:project_id>")
@blp.response(200, ProjectSchema)
def get_project(project_id: int) -> Project:
    """A published project, or one of the signed-in exhibitor's own."""
    return service.access_project(project_id, current_user())


@blp.patch("/projects/<int:project_id>")
@blp.arguments(ProjectUpdateSchema(partial=True))
@blp.response(200, ProjectSchema)
def update_project(data: dict[str, Any], project_id: int) -> Project:
    """Edit a project (its exhibitor)."""
    user = current_user()
    return service.update_project(service.access_own_project(project_id, user), user=user,
                                  changes=data)


@blp.post("/projects/<int:project_id>/publish")
@blp.response(200, ProjectSchema)
def publish(project_id: int) -> Project:
    """Publish a draft project to the catalogue (its exhibitor)."""
    user = current_user()
    return service.publish_project(service.access_own_project(project_id, user), user=user)


@blp.post("/projects/<int:project_id>/withdraw")
@blp.response(200, ProjectSchema)
def withdraw(project_id: int) -> Project:
    """Withdraw a project from the catalogue (its exhibitor)."""
    user = current_user()
    return service.withdraw_project(service.access_own_project(project_id, user), user=user)
