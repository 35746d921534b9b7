"""Hall pages: the halls of the current fair, and a hall with its player, card, chat and figures."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, url_for

from fair import i18n, permissions
from fair import service as fair_service
from fair.auth import current_user
from fair.reference import PROVINCES
from livehalls import service
from livehalls.schemas import ChatMessageEventSchema, HallSchema, ShowcaseSchema

bp = Blueprint("hall_pages", __name__, template_folder="templates", static_folder="static",
               static_url_path="/hall-static")


@bp.get("/halls")
def halls() -> str:
    """The current fair's halls, with what each has on air and how many watch."""
    fair = fair_service.current_fair()
    views = [] if fair is None else [service.view_hall(hall) for hall in service.list_halls(fair)]
    return render_template("livehalls/halls.html", fair=fair, halls=views)


@bp.get("/halls/<int:hall_id>")
def hall(hall_id: int) -> str:
    """A live hall: anyone watches; buyers sign for the project on air; organisers direct.

    The page renders the state at load; livehalls/static/livehalls/hall.js then keeps it live
    over the /live socket (join_hall's acknowledgement is the snapshot after each reconnect).
    """
    found = service.access_hall(hall_id)
    fair = fair_service.access_fair(found.fair_id)
    user = current_user()
    view = service.view_hall(found)
    showcases = service.list_showcases(found)
    config = {
        "hall": HallSchema().dump(view),
        "fair_id": fair.id,
        "schedule": ShowcaseSchema(many=True).dump(showcases),
        "chat": ChatMessageEventSchema(many=True).dump(service.recent_chat(found)),
        "signed_in": user is not None,
        "moderator": permissions.is_organiser(user),
        "project_url": url_for("exhibitor_pages.project", project_id=0),
        "provinces": {code: i18n.province_label(code) for code in PROVINCES},
        "timezone": current_app.config["BABEL_DEFAULT_TIMEZONE"],
    }
    return render_template("livehalls/hall.html", fair=fair, hall=found, view=view,
                           showcases=showcases, config=config, user=user)
