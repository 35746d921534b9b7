"""Pages: the needs list (供需对接), a need's page with its responses, publishing a need, and the
portal's "needs that match your projects"."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from exhibitors import service as exhibitor_service
from fair import permissions
from fair import service as fair_service
from fair.accounts.models import Role
from fair.auth import current_user
from fair.errors import FairError, InvalidInput
from fair.forms import refusal_text
from fair.i18n import category_label, province_label
from fair.models import Fair
from fair.reference import CATEGORIES, PROVINCES
from needs import service
from needs.models import NeedMatch
from needs.schemas import NeedInputSchema, NeedQuerySchema, ResponseInputSchema

bp = Blueprint("need_pages", __name__, template_folder="templates")

PER_PAGE = 20
#: The time zone a page's deadline (a datetime-local field) is written in: the fair's, China's.
FAIR_ZONE = dt.timezone(dt.timedelta(hours=8))


@bp.get("/needs")
def needs() -> str:
    fair = fair_service.access_current_fair()
    try:
        query = NeedQuerySchema().load({**request.args, "per_page": PER_PAGE})
    except ValidationError:
        query = service.NeedQuery(per_page=PER_PAGE)
    page = service.search_needs(fair, query=query)
    user = current_user()
    return render_template(
        "needs/list.html", fair=fair, query=query, page=page, link=_link,
        page_count=max(1, -(-page.total // PER_PAGE)),
        can_publish=permissions.is_verified_buyer(user),
        own=service.needs_of_buyer(fair, user) if user and user.role is Role.buyer else [])


def _link(**changes: Any) -> str:
    """This list with some arguments changed (None drops one), back on page 1."""
    arguments = {name: value for name, value in request.args.items()
                 if name not in ("page", "lang")}
    for name, value in changes.items():
        if value is None:
            arguments.pop(name, None)
        else:
            arguments[name] = value
    return url_for(".needs", **arguments)


@bp.get("/needs/<int:need_id>")
def need(need_id: int) -> str:
    user = current_user()
    shown = service.access_need(need_id, user)
    responses = service.list_responses(shown, user=user) if user else []
    fair = fair_service.access_fair(shown.fair_id)
    exhibitor = exhibitor_service.exhibitor_of(fair, user) \
        if user and user.role is Role.exhibitor else None
    answered = {response.project_id for response in responses}
    projects = [project for project in exhibitor_service.projects_of(exhibitor)
                if project.is_published and project.id not in answered] \
        if exhibitor is not None and exhibitor.is_approved else []
    intents = service.signed_intents(shown, user=user)
    return render_template(
        "needs/need.html", need=shown, responses=responses, projects=projects,
        is_buyer=user is not None and user.id == shown.buyer_id, intents=intents,
        signed={intent.response_id for intent in intents if intent.is_active},
        # One key per page view: a resent form signs once (deals.service.record_intent).
        sign_key=uuid.uuid4().hex)


@bp.route("/needs/new", methods=["GET", "POST"])
def new_need() -> str | Response:
    user = permissions.require_verified_buyer(current_user())
    fair = fair_service.access_current_fair()
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            data = NeedInputSchema().load(_need_form(request.form))
            created = service.create_need(fair, buyer=user, **data)
        except ValidationError as error:
            errors = error.normalized_messages()
        except FairError as error:
            errors = error.fields or {"": [refusal_text(error)]}
        else:
            flash(_("需求已发布。") if data["publish"] else _("需求已保存为草稿。"), "success")
            return redirect(url_for(".need", need_id=created.id))
    return render_template("needs/form.html", fair=fair, form=request.form, errors=errors,
                           user=user, categories=CATEGORIES, provinces=PROVINCES)


def _need_form(form: Any) -> dict[str, Any]:
    """The page's fields as the API takes them: the deadline in the fair's time zone."""
    data = {name: form.get(name, "") for name in ("title", "description", "category",
                                                  "province", "city", "budget_min",
                                                  "budget_max")}
    try:
        deadline = dt.datetime.fromisoformat(form.get("deadline", "")).replace(tzinfo=FAIR_ZONE)
        data["deadline"] = deadline.isoformat()
    except ValueError:
        data["deadline"] = form.get("deadline", "")
    data["max_responses"] = int(form["max_responses"]) \
        if form.get("max_responses", "").isdigit() else form.get("max_responses")
    data["publish"] = form.get("action") == "publish"
    return data


@bp.post("/needs/<int:need_id>/<any(open, close, withdraw):action>")
def change_need(need_id: int, action: str) -> Response:
    user = current_user()
    shown = service.access_need(need_id, user)
    change = {"open": service.open_need, "close": service.close_need,
              "withdraw": service.withdraw_need}[action]
    _attempt(lambda: change(shown, buyer=user), {
        "open": _("需求已发布。"), "close": _("需求已截止，不再接受响应。"),
        "withdraw": _("需求已撤回。")}[action])
    return redirect(url_for(".need", need_id=need_id))


@bp.post("/needs/<int:need_id>/respond")
def respond(need_id: int) -> Response:
    user = current_user()
    shown = service.access_need(need_id, user)
    try:
        data = ResponseInputSchema().load({
            "project_id": int(request.form.get("project_id", "0") or 0),
            "price": request.form.get("price", ""), "note": request.form.get("note", "")})
    except (ValidationError, ValueError):
        flash(_("请填写有效的项目和报价。"), "error")
    else:
        _attempt(lambda: service.respond_to_need(shown, user=user, **data),
                 _("已提交响应，等待采购方回复。"))
    return redirect(url_for(".need", need_id=need_id))


@bp.post("/responses/<int:response_id>/<any(shortlist, decline, intent):action>")
def decide(response_id: int, action: str) -> Response:
    user = current_user()
    response = service.access_response(response_id, user)
    if action == "intent":
        _attempt(lambda: service.sign_response(
            response, buyer=user, idempotency_key=request.form.get("key", "")),
            _("已签约意向，计入大会签约总额。"))
    elif action == "shortlist":
        _attempt(lambda: service.shortlist_response(response, buyer=user), _("已入围。"))
    else:
        _attempt(lambda: service.decline_response(response, buyer=user), _("已婉拒该响应。"))
    return redirect(url_for(".need", need_id=response.need_id))


#: The labels of the forms' fields, for the refusals that name them.
FIELD_LABELS = {
    "title": _l("需求标题"), "category": _l("类别"), "province": _l("需求地区"),
    "city": _l("城市或区县（选填）"), "budget_min": _l("预算下限（元）"),
    "budget_max": _l("预算上限（元）"), "deadline": _l("截止时间（北京时间）"),
    "max_responses": _l("最多接受响应数"), "price": _l("报价（元）"), "note": _l("说明"),
}


def _attempt(action: Any, success: str) -> None:
    try:
        action()
    except InvalidInput as error:
        # Each message under the form's own label: the field's API name (budget_max) means
        # nothing to the person reading it.
        flash(" ".join([str(refusal_text(error)), *(
            _("%(field)s：%(message)s", field=FIELD_LABELS.get(name, name),
              message=" ".join(map(str, messages)))
            for name, messages in error.fields.items())]), "error")
    except FairError as error:
        flash(refusal_text(error), "error")
    else:
        flash(success, "success")


def matches_for(fair: Fair) -> list[NeedMatch]:
    """The signed-in exhibitor's matching open needs, for its portal."""
    return service.matching_needs(fair, user=current_user())


def figures_for(fair: Fair, by: str) -> list[list[Any]]:
    """The portrait's table of needs per category or province (organisers)."""
    label = category_label if by == "category" else province_label
    return [[label(figure.key), figure.needs, figure.responses, figure.matched_needs,
             figure.signed_responses, figure.match_rate, figure.conversion_rate]
            for figure in service.need_figures(fair, organiser=current_user(), by=by)]


def init_app(app: Flask) -> None:
    """Pages below this package reach it through these: the exhibitor's portal its matches,
    the organisers' portrait its figures."""

    @app.context_processor
    def needs_globals() -> dict[str, Any]:
        return {"matching_needs_for": matches_for, "need_figures": figures_for}
