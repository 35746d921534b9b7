"""The inbox API: a user's notifications and their unread count."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from fair import permissions
from fair.auth import current_user
from inbox import service
from inbox.schemas import InboxSchema, MarkReadSchema, UnreadSchema

blp = Blueprint("inbox", __name__, url_prefix="/api/v1", description="Every user's inbox")


@blp.get("/me/notifications")
@blp.response(200, InboxSchema)
def notifications() -> dict[str, Any]:
    """Your notifications, newest first, and how many are unread."""
    user = permissions.require_user(current_user())
    return {"items": service.list_notifications(user), "unread": service.count_unread(user.id)}


@blp.get("/me/notifications/unread")
@blp.response(200, UnreadSchema)
def unread() -> dict[str, int]:
    """How many of your notifications are unread (read again after a reconnect)."""
    user = permissions.require_user(current_user())
    return {"unread": service.count_unread(user.id)}


@blp.post("/me/notifications/read")
@blp.arguments(MarkReadSchema)
@blp.response(200, UnreadSchema)
def mark_read(data: dict[str, Any]) -> dict[str, int]:
    """Mark these notifications (or all) read; your sockets hear the new count."""
    return {"unread": service.mark_read(current_user(), ids=data["ids"])}
