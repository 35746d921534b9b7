"""Halls API: halls of a fair, their showcase schedule, on-air control, chat moderation, and
the health of the server process that carries them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_smorest import Blueprint

from fair import health
from fair import service as fair_service
from fair.auth import current_user
from livehalls import presence, service, streaming
from livehalls.models import ChatMessage, ChatSanction, PushAttempt, Showcase
from livehalls.schemas import (
    ChatLineSchema,
    ChatMessageEventSchema,
    ChatSanctionInputSchema,
    ChatSanctionSchema,
    HallChangeSchema,
    HallInputSchema,
    HallSchema,
    HealthSchema,
    OnAirInputSchema,
    PushAttemptSchema,
    PushDetailsSchema,
    ReplayInputSchema,
    ShowcaseInputSchema,
    ShowcaseMoveSchema,
    ShowcaseSchema,
    StreamHookSchema,
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


@blp.patch("/halls/<int:hall_id>")
@blp.arguments(HallChangeSchema)
@blp.response(200, HallSchema)
def change_hall(data: dict[str, Any], hall_id: int) -> service.HallView:
    """Rename or reorder a hall, or change its auto on-air switch and grace period (organisers)."""
    hall = service.change_hall(service.access_hall(hall_id), organiser=current_user(), **data)
    return service.view_hall(hall)


@blp.patch("/showcases/<int:showcase_id>")
@blp.arguments(ShowcaseMoveSchema)
@blp.response(200, ShowcaseSchema)
def move_showcase(data: dict[str, Any], showcase_id: int) -> Showcase:
    """Move a showcase to another free slot, perhaps of another hall (organisers)."""
    data.pop("project_id", None)
    return service.move_showcase(service.access_showcase(showcase_id), organiser=current_user(),
                                 **data)


@blp.delete("/showcases/<int:showcase_id>")
@blp.response(204)
def cancel_showcase(showcase_id: int) -> None:
    """Cancel a showcase that has not been streamed (organisers)."""
    service.cancel_showcase(service.access_showcase(showcase_id), organiser=current_user())


@blp.get("/showcases/<int:showcase_id>/push")
@blp.response(200, PushDetailsSchema)
def push_details(showcase_id: int) -> streaming.PushDetails:
    """The showcase's push URL and stream key (organisers, the project's exhibitor)."""
    return streaming.push_details(service.access_showcase(showcase_id), user=current_user())


@blp.post("/showcases/<int:showcase_id>/push/regenerate")
@blp.response(200, PushDetailsSchema)
def regenerate_push_key(showcase_id: int) -> streaming.PushDetails:
    """A new stream key: every earlier push URL of the showcase stops working (organisers)."""
    user = current_user()
    showcase = streaming.regenerate_push_key(service.access_showcase(showcase_id),
                                             organiser=user)
    return streaming.push_details(showcase, user=user)


@blp.post("/showcases/<int:showcase_id>/replay")
@blp.arguments(ReplayInputSchema)
@blp.response(200, ShowcaseSchema)
def set_replay_hidden(data: dict[str, Any], showcase_id: int) -> Showcase:
    """Hide the showcase's replay (回放) from everyone else, or show it (its exhibitor)."""
    return streaming.set_replay_hidden(service.access_showcase(showcase_id),
                                       user=current_user(), hidden=data["hidden"])


@blp.get("/halls/<int:hall_id>/pushes")
@blp.response(200, PushAttemptSchema(many=True))
def recent_pushes(hall_id: int) -> Sequence[PushAttempt]:
    """The hall's last pushes, accepted and refused with the reason, newest first (organisers)."""
    return streaming.recent_attempts(service.access_hall(hall_id), organiser=current_user())


# The media server's hooks (nginx-rtmp on_publish, on_publish_done, on_record_done): it posts
# a form and accepts the stream on a 2xx, refuses it on anything else. The token in the path,
# derived from SECRET_KEY, is in the server's configuration and nowhere else.


@blp.post("/stream-hooks/<token>/publish")
@blp.arguments(StreamHookSchema, location="form")
@blp.response(204)
@blp.alt_response(403, description="the push is refused; the code says why")
def on_publish(data: dict[str, Any], token: str) -> None:
    """Accept a push (2xx) or refuse it (403), and log it for the organisers."""
    streaming.check_hook_token(token)
    verdict = streaming.publish_started(name=data["name"], expires=data["e"],
                                        signature=data["s"], addr=data["addr"],
                                        client=data["clientid"])
    if not verdict.accepted:
        raise streaming.StreamRefused(verdict.reason)


@blp.post("/stream-hooks/<token>/publish-done")
@blp.arguments(StreamHookSchema, location="form")
@blp.response(204)
def on_publish_done(data: dict[str, Any], token: str) -> None:
    """A push ended: its showcase leaves the air."""
    streaming.check_hook_token(token)
    streaming.publish_done(name=data["name"], addr=data["addr"], client=data["clientid"])


@blp.post("/stream-hooks/<token>/record-done")
@blp.arguments(StreamHookSchema, location="form")
@blp.response(204)
def on_record_done(data: dict[str, Any], token: str) -> None:
    """A recording is complete: it becomes the showcase's replay, in the background."""
    streaming.check_hook_token(token)
    streaming.recording_done(name=data["name"], path=data["path"])


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


@blp.post("/chat/<int:message_id>/show")
@blp.response(200, ChatLineSchema)
def show_chat(message_id: int) -> ChatMessage:
    """Show a hidden chat line again, undoing its hiding (organisers)."""
    return service.show_chat(service.access_chat_message(message_id), organiser=current_user())


@blp.get("/halls/<int:hall_id>/chat-sanctions")
@blp.response(200, ChatSanctionSchema(many=True))
def list_chat_sanctions(hall_id: int) -> Sequence[ChatSanction]:
    """Who is muted or banned in the hall's chat (organisers)."""
    return service.list_sanctions(service.access_hall(hall_id), organiser=current_user())


@blp.post("/halls/<int:hall_id>/chat-sanctions")
@blp.arguments(ChatSanctionInputSchema)
@blp.response(200, ChatSanctionSchema)
def sanction_chatter(data: dict[str, Any], hall_id: int) -> ChatSanction:
    """Mute or ban a user in the hall's chat; a ban also hides their lines (organisers)."""
    return service.sanction_chatter(service.access_hall(hall_id), organiser=current_user(),
                                    user_id=data["user_id"], kind=data["kind"])


@blp.delete("/halls/<int:hall_id>/chat-sanctions/<int:user_id>")
@blp.response(204)
def lift_chat_sanction(hall_id: int, user_id: int) -> None:
    """Let a muted or banned user chat in the hall again (organisers)."""
    service.lift_sanction(service.access_hall(hall_id), organiser=current_user(), user_id=user_id)


@blp.get("/health")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="something this process needs is down")
def get_health() -> tuple[health.Health, int]:
    """This process: the database, Redis, and whether it listens to the Socket.IO queue."""
    report = health.check(processes=presence.current().live_processes)
    return report, 200 if report["ok"] else 503
