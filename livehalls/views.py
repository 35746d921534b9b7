"""Hall pages: the halls of the current fair, and a hall with its player, card, chat and figures."""

from __future__ import annotations

from collections.abc import Sequence

from flask import Blueprint, Response, redirect, render_template, request, send_file, url_for

from exhibitors.models import Project
from fair import i18n, permissions
from fair import service as fair_service
from fair.auth import current_user
from fair.reference import PROVINCES
from livehalls import service, streaming
from livehalls.models import Showcase
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
    }
    return render_template("livehalls/hall.html", fair=fair, hall=found, view=view,
                           showcases=showcases, config=config, user=user)


#: A replay never changes under its hash.
IMMUTABLE = 365 * 24 * 3600


@bp.app_template_global("project_replays")
def project_replays(project: Project) -> Sequence[Showcase]:
    """For the project page (exhibitors' template): the replays its viewer may watch."""
    return streaming.project_replays(project, user=current_user())


@bp.app_template_global("replay_editor")
def replay_editor(project: Project) -> bool:
    return permissions.can_see_push_details(current_user(), project)


@bp.post("/replays/<int:showcase_id>/visibility")
def replay_visibility(showcase_id: int) -> Response:
    """The exhibitor hides a replay (hidden=1) or shows it again (hidden=0)."""
    showcase = streaming.set_replay_hidden(service.access_showcase(showcase_id),
                                           user=current_user(),
                                           hidden=request.form.get("hidden") == "1")
    return redirect(url_for("exhibitor_pages.project", project_id=showcase.project_id,
                            _anchor="replays"))


@bp.get("/replays/<int:showcase_id>.mp4")
def replay(showcase_id: int) -> Response:
    """A showcase's replay (回放): an MP4 served with ranges, so that players seek in it."""
    showcase = streaming.access_replay(showcase_id, current_user())
    response = send_file(streaming.replay_path(showcase), mimetype="video/mp4", conditional=True,
                         etag=showcase.replay_sha256, max_age=IMMUTABLE)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    if showcase.replay_hidden or not showcase.project.is_published:
        response.cache_control.public = False
        response.cache_control.private = True
    return response
