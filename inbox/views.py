"""The inbox page, and the unread count every page's header shows (kept live by inbox.js)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, render_template, url_for
from werkzeug.wrappers import Response

from fair import permissions
from fair.auth import current_user
from inbox import service

bp = Blueprint("inbox_pages", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/inbox")


@bp.get("/inbox")
def inbox() -> str:
    user = permissions.require_user(current_user())
    return render_template("inbox/inbox.html", notifications=service.list_notifications(user),
                           text_of=service.text_of)


@bp.post("/inbox/read")
def mark_read() -> Response:
    service.mark_read(current_user())
    return redirect(url_for(".inbox"))


def init_app(app: Flask) -> None:
    @app.context_processor
    def unread() -> dict[str, Any]:
        def count() -> int:
            user = current_user()
            return 0 if user is None else service.count_unread(user.id)

        return {"unread_notifications": count}
