"""Pages: the catalogue, the public project page, the exhibitor's portal, the approval page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from exhibitors import catalogue, service
from exhibitors import media as media_files
from exhibitors.forms import CatalogueForm, MediaForm, ProjectForm
from exhibitors.models import ExhibitorStatus, Project
from fair import guard, permissions, signals
from fair import service as fair_service
from fair.accounts.models import Role
from fair.auth import current_user
from fair.errors import FairError, InvalidInput
from fair.forms import refusal_text
from fair.models import Fair
from fair.money import format_yuan
from fair.reference import PROVINCES

bp = Blueprint("exhibitor_pages", __name__, template_folder="templates")

PER_PAGE = 24


# --- The catalogue and the project page ---------------------------------------------------


@bp.get("/catalogue", endpoint="catalogue")
def current_catalogue() -> str:
    return _catalogue(fair_service.access_current_fair())


@bp.get("/fairs/<int:fair_id>/projects")
def fair_catalogue(fair_id: int) -> str:
    return _catalogue(fair_service.access_fair(fair_id))


def _catalogue(fair: Fair) -> str:
    form = CatalogueForm(request.args)
    query = form.to_query(per_page=PER_PAGE)
    page = catalogue.search(fair, viewer=current_user(), query=query)
    signals.catalogue_searched.send(None, fair_id=fair.id, terms=query.q,
                                    facets=query.filters, results=page.total, page=True)
    return render_template(
        "exhibitors/catalogue.html", fair=fair, form=form, query=query, page=page,
        page_count=max(1, -(-page.total // PER_PAGE)), link=_catalogue_link,
    )


def _catalogue_link(**changes: Any) -> str:
    """This catalogue page with some arguments changed (None drops one), back on page 1."""
    arguments = {name: value for name, value in request.args.items()
                 if name not in ("page", "lang")}
    for name, value in changes.items():
        if value is None:
            arguments.pop(name, None)
        else:
            arguments[name] = value
    return url_for(request.endpoint or ".catalogue", **(request.view_args or {}),
                   **arguments)


@bp.get("/projects/<int:project_id>")
def project(project_id: int) -> str:
    user = current_user()
    shown = service.access_project(project_id, user)
    signals.project_viewed.send(None, project=shown)
    return render_template("exhibitors/project.html", project=shown,
                           can_edit=permissions.can_edit_project(user, shown))


# --- The exhibitor's portal ---------------------------------------------------------------


@bp.get("/portal")
def portal() -> str:
    user = permissions.require_role(current_user(), Role.exhibitor)
    fair = fair_service.access_current_fair()
    exhibitor = service.exhibitor_of(fair, user)
    projects = service.projects_of(exhibitor) if exhibitor is not None else []
    return render_template("exhibitors/portal.html", fair=fair, exhibitor=exhibitor,
                           projects=projects)


@bp.post("/portal/apply")
def portal_apply() -> Response:
    service.apply_to_fair(fair_service.access_current_fair(), user=current_user())
    flash(_("已提交参展申请，请等待主办方审核。"), "success")
    return redirect(url_for(".portal"))


@bp.route("/portal/projects/new", methods=["GET", "POST"])
def portal_new_project() -> str | Response:
    user = permissions.require_role(current_user(), Role.exhibitor)
    exhibitor = service.exhibitor_of(fair_service.access_current_fair(), user)
    if exhibitor is None or not exhibitor.is_approved:
        # No form that would only be refused: the portal says where the application stands.
        flash({None: _("请先申请参展，主办方批准后即可新建项目。"),
               ExhibitorStatus.pending: _("参展申请正在审核，批准后即可新建项目。"),
               ExhibitorStatus.rejected: _("参展申请未通过，不能新建项目。理由见下方。")}[
                   None if exhibitor is None else exhibitor.status], "error")
        return redirect(url_for(".portal"))
    form = ProjectForm()
    if form.validate_on_submit():
        try:
            created = service.create_project(fair_service.access_current_fair(), user=user,
                                             **form.changes())
        except FairError as error:
            form.show_refusal(error)
        else:
            flash(_("项目已保存为草稿。上传图片后即可发布。"), "success")
            return redirect(url_for(".portal_project", project_id=created.id))
    return render_template("exhibitors/project_form.html", form=form, project=None)


@bp.route("/portal/projects/<int:project_id>", methods=["GET", "POST"])
def portal_project(project_id: int) -> str | Response:
    user = current_user()
    own = service.access_own_project(project_id, user)
    form = ProjectForm(data=_form_data(own))
    if form.validate_on_submit():
        try:
            service.update_project(own, user=user, changes=form.changes())
        except FairError as error:
            form.show_refusal(error)
        else:
            flash(_("项目已保存。"), "success")
            return redirect(url_for(".portal_project", project_id=own.id))
    return render_template("exhibitors/project_form.html", form=form, project=own,
                           media_form=MediaForm())


def _form_data(project: Project) -> dict[str, Any]:
    return {
        "title": project.title,
        "category": project.category,
        "price": format_yuan(project.price_fen),
        "summary": project.summary,
        "title_en": project.title_en,
        "summary_en": project.summary_en,
        "description": project.description_source,
        "tags": "，".join(project.tag_list),
    }


@bp.post("/portal/projects/<int:project_id>/media")
@guard.large_body(media_files.MAX_UPLOAD_BODY, file_stream=media_files.upload_stream)
def portal_upload_media(project_id: int) -> Response:
    user = current_user()
    own = service.access_own_project(project_id, user)
    form = MediaForm()
    if not form.validate_on_submit():
        for message in form.file.errors:
            flash(message, "error")
    else:
        upload = form.file.data
        try:
            service.add_media(own, user=user, upload=upload.stream, filename=upload.filename,
                              media_root=Path(current_app.config["MEDIA_ROOT"]))
        except FairError as error:
            flash(refusal_text(error), "error")
        else:
            flash(_("已上传 %(name)s。", name=upload.filename or ""), "success")
    after = url_for(".portal_project", project_id=own.id, _anchor="media")
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        # upload.js follows this itself: a redirect followed inside the request would show
        # the flashed message to the script instead of the person.
        return jsonify({"next": after})
    return redirect(after)


@bp.post("/portal/media/<int:media_id>/delete")
def portal_delete_media(media_id: int) -> Response:
    user = current_user()
    item = service.access_media(media_id, user)
    project_id = item.project_id
    service.delete_media(item, user=user, media_root=Path(current_app.config["MEDIA_ROOT"]))
    flash(_("已删除文件。"), "success")
    return redirect(url_for(".portal_project", project_id=project_id, _anchor="media"))


@bp.post("/portal/projects/<int:project_id>/publish")
def portal_publish(project_id: int) -> Response:
    user = current_user()
    service.publish_project(service.access_own_project(project_id, user), user=user)
    flash(_("项目已发布到文化超市。"), "success")
    return redirect(url_for(".portal_project", project_id=project_id))


@bp.post("/portal/projects/<int:project_id>/withdraw")
def portal_withdraw(project_id: int) -> Response:
    user = current_user()
    service.withdraw_project(service.access_own_project(project_id, user), user=user)
    flash(_("项目已从文化超市撤回。"), "success")
    return redirect(url_for(".portal"))


# --- The organiser's approval page --------------------------------------------------------


APPROVALS_PER_PAGE = 50


@bp.get("/organiser/exhibitors")
def approvals() -> str:
    shown = ExhibitorStatus.__members__.get(request.args.get("status", ""),
                                            ExhibitorStatus.pending)
    province = request.args.get("province") if request.args.get("province") in PROVINCES else None
    q = request.args.get("q", "").strip()[:100]
    page = max(1, min(request.args.get("page", 1, type=int) or 1, 10_000))
    fair = fair_service.access_current_fair()
    found = service.search_exhibitors(fair, organiser=current_user(), status=shown,
                                      province=province, q=q, page=page,
                                      per_page=APPROVALS_PER_PAGE)
    return render_template(
        "exhibitors/approvals.html", fair=fair, exhibitors=found.items, total=found.total,
        shown=shown, province=province, q=q, page=page,
        page_count=max(1, -(-found.total // APPROVALS_PER_PAGE)), provinces=PROVINCES,
        back=_approvals_back())


def _approvals_back() -> str:
    """The approvals list as the organiser left it (status, filters, page)."""
    kept = {name: request.values[name] for name in ("status", "province", "q", "page")
            if request.values.get(name)}
    return url_for(".approvals", **kept)


@bp.post("/organiser/exhibitors/<int:exhibitor_id>/approve")
def approve(exhibitor_id: int) -> Response:
    decided = service.approve_exhibitor(service.access_exhibitor(exhibitor_id),
                                        organiser=current_user())
    flash(_("已批准 %(name)s 参展。", name=decided.organisation.name), "success")
    return redirect(_approvals_back())


@bp.post("/organiser/exhibitors/approve")
def approve_many() -> Response:
    ids = [int(value) for value in request.form.getlist("ids") if value.isdigit()]
    approved = service.approve_exhibitors(fair_service.access_current_fair(),
                                          organiser=current_user(), ids=ids)
    flash(_("已批准 %(count)d 家单位参展。", count=approved), "success")
    return redirect(_approvals_back())


@bp.post("/organiser/exhibitors/<int:exhibitor_id>/reject")
def reject(exhibitor_id: int) -> Response:
    try:
        decided = service.reject_exhibitor(service.access_exhibitor(exhibitor_id),
                                           organiser=current_user(),
                                           reason=request.form.get("reason", ""))
    except InvalidInput as error:
        flash(str(error.fields.get("reason", [error.message])[0]), "error")
        return redirect(_approvals_back())
    flash(_("已拒绝 %(name)s 的参展申请。", name=decided.organisation.name), "success")
    return redirect(_approvals_back())
