"""Hall pages: the halls of the current fair, and a hall with its player, card, chat and figures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _

from exhibitors.models import Project
from fair import i18n, permissions, signals
from fair import service as fair_service
from fair.auth import current_user
from fair.database import as_utc, utcnow
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
        "user_id": None if user is None else user.id,
        "moderator": permissions.is_organiser(user),
        "project_url": url_for("exhibitor_pages.project", project_id=0),
        "provinces": {code: i18n.province_label(code) for code in PROVINCES},
        "timezone": current_app.config["BABEL_DEFAULT_TIMEZONE"],
        "hls_src": url_for("pages.vendor", path="hls.js/dist/hls.min.js"),
    }
    signals.hall_opened.send(None, fair_id=fair.id, hall_id=found.id)
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


# --- The organisers' pages: halls, and a day of a hall's schedule --------------------------


def _zone() -> ZoneInfo:
    """The fair's clock (Beijing): days and times on the organisers' pages are in it."""
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


@bp.get("/organiser/halls")
def manage_halls() -> str:
    """Create, rename and reorder the current fair's halls; each hall's switches."""
    permissions.require_hall_manager(current_user())
    fair = fair_service.access_current_fair()
    halls = service.list_halls(fair)
    return render_template("livehalls/manage_halls.html", fair=fair, halls=halls,
                           today=dt.datetime.now(_zone()).date())


@bp.get("/organiser/halls/<int:hall_id>")
def manage_day(hall_id: int) -> str:
    """A day of one hall: schedule, move, cancel, on and off air, push details, refusals."""
    user = current_user()
    permissions.require_hall_manager(user)
    found = service.access_hall(hall_id)
    fair = fair_service.access_fair(found.fair_id)
    zone = _zone()
    try:
        day = dt.date.fromisoformat(request.args.get("day", ""))
    except ValueError:
        day = dt.datetime.now(zone).date()
    starting = dt.datetime.combine(day, dt.time(), zone)
    showcases = service.list_showcases(found, starting=starting,
                                       before=starting + dt.timedelta(days=1))
    config = {
        "hall_id": found.id, "fair_id": fair.id, "day": day.isoformat(),
        "offset": starting.strftime("%z")[:3] + ":" + starting.strftime("%z")[3:],
        "showcases": [{"id": showcase.id, "title": showcase.project.title,
                       "starts_at": as_utc(showcase.starts_at).isoformat(),
                       "ends_at": as_utc(showcase.ends_at).isoformat()}
                      for showcase in showcases],
    }
    return render_template(
        "livehalls/manage_day.html", fair=fair, hall=found, day=day, showcases=showcases,
        halls=service.list_halls(fair), candidates=service.showcase_candidates(fair),
        attempts=streaming.recent_attempts(found, organiser=user), refusals=_refusal_texts(),
        previous_day=day - dt.timedelta(days=1), next_day=day + dt.timedelta(days=1),
        zone=zone, config=config,
    )


@bp.get("/portal/showcases")
def my_showcases() -> str:
    """An exhibitor's showcases: when and where they stream, the push details, the replays."""
    user = current_user()
    fair = fair_service.access_current_fair()
    now = utcnow()
    showcases = service.exhibitor_showcases(user, fair, since=fair.starts_at)
    upcoming = [s for s in showcases if as_utc(s.ends_at) > now]
    past = [s for s in showcases if as_utc(s.ends_at) <= now]
    hall_names = {hall.id: hall.name for hall in service.list_halls(fair)}
    return render_template("livehalls/my_showcases.html", fair=fair, upcoming=upcoming,
                           past=past, hall_names=hall_names)


def _refusal_texts() -> dict[str, str]:
    """The refusals of livehalls.streaming.REFUSALS in the reader's language."""
    return {
        "unknown_showcase": _("推流名称不对应任何节目"),
        "wrong_hall": _("该节目安排在其他直播厅"),
        "bad_signature": _("签名错误，或推流码已重新生成"),
        "expired": _("推流地址已过期"),
        "reused": _("推流地址已用过，请重新生成"),
        "outside_slot": _("不在节目时段（含宽限时间）内"),
        "already_streaming": _("已有其他编码器在推流"),
    }
