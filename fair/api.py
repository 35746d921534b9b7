"""Fair API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_smorest import Blueprint

from fair import service
from fair.auth import current_user
from fair.models import Fair
from fair.schemas import FairSchema, FairUpdateSchema

blp = Blueprint("fairs", __name__, url_prefix="/api/v1", description="Fairs")


@blp.post("/fairs")
@blp.arguments(FairSchema)
@blp.response(201, FairSchema)
def create_fair(data: dict[str, Any]) -> Fair:
    """Create a fair (organisers)."""
    return service.create_fair(organiser=current_user(), **data)


@blp.get("/fairs")
@blp.response(200, FairSchema(many=True))
def list_fairs() -> Sequence[Fair]:
    """Every fair, newest first."""
    return service.list_fairs()


@blp.get("/fairs/<int:fair_id>")
@blp.response(200, FairSchema)
def get_fair(fair_id: int) -> Fair:
    """One fair."""
    return service.access_fair(fair_id)


@blp.patch("/fairs/<int:fair_id>")
@blp.arguments(FairUpdateSchema)
@blp.response(200, FairSchema)
def update_fair(data: dict[str, Any], fair_id: int) -> Fair:
    """Rename, reschedule, open or close a fair (organisers)."""
    return service.update_fair(service.access_fair(fair_id), organiser=current_user(),
                               changes=data)
