"""Halls API: halls of a fair, their showcase schedule, on-air control, chat moderation, and
the health of the server process that carries them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_smorest import Blueprint

from fair import health
from fair import service as fair_service
from fair.auth import current_user
from livehalls import presence, service
from livehalls.models import ChatMessage, Showcase
from livehalls.schemas import (
    ChatLineSchema,
    ChatMessageEventSchema,
    HallInputSchema,
    HallSchema,
    HealthSchema,
    OnAirInputSchema,
    ShowcaseInputSchema,
    ShowcaseSchema,
)

blp = Blueprint("halls", __name__, url_prefix="/api/v1", description="Live halls")


@blp.post("/fairs/<int:fair_id>/halls")
@blp.arguments(HallInputSchema)
@blp.response(201, HallSchema)
def create_hall(data: dict[str, Any], fair_id: int) -> service.HallView:
    """Open a live hall (organisers)."""
    hall = service.create_hall(fair_service.access_fair(fair_id), organiser=current_user(),
                               **data)
    return service.view_hall(hall)


@blp.get("/fairs/<int:fair_id>/halls")
@blp.response(200, HallSchema(many=True))
def list_halls(fair_id: int) -> list[service.HallView]:
    """The fair's halls, with what is on air and the viewer figures."""
    return [service.view_hall(hall)
            for hall in service.list_halls(fair_service.access_fair(fair_id))]


@blp.get("/halls/<int:hall_id>")
@blp.response(200, HallSchema)
def get_hall(hall_id: int) -> service.HallView:
    """A hall: what is on air, viewers now, visits (人次) and the peak."""
    return service.view_hall(service.access_hall(hall_id))


@blp.post("/halls/<int:hall_id>/showcases")
@blp.arguments(ShowcaseInputSchema)
@blp.response(201, ShowcaseSchema)
def schedule_showcase(data: dict[str, Any], hall_id: int) -> Showcase:
    """Schedule a project in a free slot of the hall (organisers)."""
    return service.schedule_showcase(service.access_hall(hall_id), organiser=current_user(),
                                     **data)


@blp.get("/halls/<int:hall_id>/showcases")
@blp.response(200, ShowcaseSchema(many=True))
def list_showcases(hall_id: int) -> Sequence[Showcase]:
    """The hall's schedule, in time order."""
    return service.list_showcases(service.access_hall(hall_id))


@blp.post("/halls/<int:hall_id>/on-air")
@blp.arguments(OnAirInputSchema)
@blp.response(200, HallSchema)
def put_on_air(data: dict[str, Any], hall_id: int) -> service.HallView:
    """Put a showcase on air, or `{showcase_id: null}` to take the hall off air (organisers)."""
    hall = service.put_on_air(service.access_hall(hall_id), organiser=current_user(),
                              showcase_id=data["showcase_id"])
    return service.view_hall(hall)


@blp.get("/halls/<int:hall_id>/chat")
@blp.response(200, ChatMessageEventSchema(many=True))
def recent_chat(hall_id: int) -> list[ChatMessage]:
    """The hall's last 50 visible chat lines, oldest first."""
    return service.recent_chat(service.access_hall(hall_id))


@blp.post("/chat/<int:message_id>/hide")
@blp.response(200, ChatLineSchema)
def hide_chat(message_id: int) -> ChatMessage:
    """Hide a chat line from everyone (organisers)."""
    return service.hide_chat(service.access_chat_message(message_id), organiser=current_user())


@blp.get("/health")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="something this process needs is down")
def get_health() -> tuple[health.Health, int]:
    """This process: the database, Redis, and whether it listens to the Socket.IO queue."""
    report = health.check(processes=presence.current().live_processes)
    return report, 200 if report["ok"] else 503
