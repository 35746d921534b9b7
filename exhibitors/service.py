"""Exhibitor use cases: apply, approve, reject; create, edit, publish and withdraw projects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import markdown
import nh3
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from exhibitors import catalogue
from exhibitors import media as media_files
from exhibitors.models import Exhibitor, ExhibitorStatus, Media, Project, ProjectStatus
from fair import permissions
from fair.accounts.models import Organisation, Role, User
from fair.database import use_case, utcnow
from fair.errors import Conflict, Forbidden, InvalidInput, NotFound
from fair.extensions import db
from fair.models import Fair, FairStatus

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "u", "ul", "ol", "li", "blockquote", "h2", "h3", "h4",
    "a", "code", "pre", "hr", "table", "thead", "tbody", "tr", "th", "td",
}


def render_description(source: str) -> str:
    """Markdown or HTML in, sanitised HTML out: no script, handler or javascript: URL."""
    html = markdown.markdown(source, extensions=["tables"], output_format="html")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


@dataclass(frozen=True)
class FairFigures:
    """The headline numbers of a fair's catalogue, as the home page shows them."""

    exhibitors: int
    projects: int
    provinces: int


def fair_figures(fair: Fair) -> FairFigures:
    """Approved exhibitors, published projects and the provinces the exhibitors come from."""
    approved = (
        select(Exhibitor.organisation_id)
        .where(Exhibitor.fair_id == fair.id, Exhibitor.status == ExhibitorStatus.approved)
        .subquery()
    )
    exhibitors = db.session.scalar(select(func.count()).select_from(approved)) or 0
    provinces = db.session.scalar(
        select(func.count(func.distinct(Organisation.province))).where(
            Organisation.id.in_(select(approved.c.organisation_id))
        )
    ) or 0
    projects = db.session.scalar(
        select(func.count()).select_from(Project).where(
            Project.fair_id == fair.id, Project.status == ProjectStatus.published
        )
    ) or 0
    return FairFigures(exhibitors=exhibitors, projects=projects, provinces=provinces)


def access_exhibitor(exhibitor_id: int) -> Exhibitor:
    exhibitor = db.session.get(Exhibitor, exhibitor_id)
    if exhibitor is None:
        raise NotFound(_l("没有这个参展单位。"))
    return exhibitor


def exhibitor_of(fair: Fair, user: User | None) -> Exhibitor | None:
    """The user's organisation's place in the fair, if it applied."""
    if user is None or user.organisation_id is None:
        return None
    return db.session.scalar(
        select(Exhibitor).where(
            Exhibitor.fair_id == fair.id, Exhibitor.organisation_id == user.organisation_id
        )
    )


def list_exhibitors(
    fair: Fair, *, organiser: User | None, status: ExhibitorStatus | None = None
) -> Sequence[Exhibitor]:
    permissions.require_organiser(organiser)
    query = select(Exhibitor).where(Exhibitor.fair_id == fair.id).order_by(Exhibitor.id)
    if status is not None:
        query = query.where(Exhibitor.status == status)
    return db.session.scalars(query).all()


@use_case()
def apply_to_fair(fair: Fair, *, user: User | None) -> Exhibitor:
    """An exhibitor's organisation applies to a fair; applying twice returns the application."""
    user = permissions.require_role(user, Role.exhibitor)
    if fair.status is FairStatus.closed:
        raise Conflict(_l("本届大会已闭幕。"), code="fair_closed")
    existing = exhibitor_of(fair, user)
    if existing is not None:
        return existing
    assert user.organisation_id is not None  # noqa: S101 - exhibitors always have one
    exhibitor = Exhibitor(fair_id=fair.id, organisation_id=user.organisation_id,
                          status=ExhibitorStatus.pending)
    db.session.add(exhibitor)
    return exhibitor


@dataclass(frozen=True)
class ExhibitorPage:
    """One page of applications and how many match in all."""

    items: Sequence[Exhibitor]
    total: int


def search_exhibitors(
    fair: Fair, *, organiser: User | None, status: ExhibitorStatus | None = None,
    province: str | None = None, q: str = "", page: int = 1, per_page: int = 50,
) -> ExhibitorPage:
    """Applications to the fair by status, province and a word of the organisation's name."""
    permissions.require_organiser(organiser)
    where = [Exhibitor.fair_id == fair.id]
    if status is not None:
        where.append(Exhibitor.status == status)
    if province is not None:
        where.append(Organisation.province == province)
    if q.strip():
        where.append(Organisation.name.contains(q.strip(), autoescape=True))
    query = select(Exhibitor).join(Organisation, Exhibitor.organisation_id == Organisation.id)
    total = db.session.scalar(
        select(func.count()).select_from(query.where(*where).subquery())) or 0
    items = db.session.scalars(
        query.where(*where).order_by(Exhibitor.id).limit(per_page)
        .offset((max(page, 1) - 1) * per_page)
    ).all()
    return ExhibitorPage(items=items, total=total)


@use_case()
def approve_exhibitor(exhibitor: Exhibitor, *, organiser: User | None) -> Exhibitor:
    permissions.require_organiser(organiser)
    exhibitor.status = ExhibitorStatus.approved
    exhibitor.decided_at = utcnow()
    exhibitor.rejection_reason = ""
    return exhibitor


@use_case()
def approve_exhibitors(fair: Fair, *, organiser: User | None, ids: Sequence[int]) -> int:
    """Approve several pending applications of the fair at once; returns how many."""
    permissions.require_organiser(organiser)
    chosen = db.session.scalars(
        select(Exhibitor).where(Exhibitor.fair_id == fair.id, Exhibitor.id.in_(list(ids)),
                                Exhibitor.status == ExhibitorStatus.pending)
    ).all()
    now = utcnow()
    for exhibitor in chosen:
        exhibitor.status = ExhibitorStatus.approved
        exhibitor.decided_at = now
    return len(chosen)


#: A rejection says why, in at most this many characters.
MAX_REASON_LENGTH = 500


@use_case()
def reject_exhibitor(exhibitor: Exhibitor, *, organiser: User | None, reason: str) -> Exhibitor:
    """Reject an application with the reason the exhibitor will read."""
    permissions.require_organiser(organiser)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(fields={"reason": [_l("请写明拒绝的理由，参展单位会看到它。")]})
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(fields={"reason": [_l("最多 %(count)d 个字。",
                                                 count=MAX_REASON_LENGTH)]})
    exhibitor.status = ExhibitorStatus.rejected
    exhibitor.decided_at = utcnow()
    exhibitor.rejection_reason = reason
    return exhibitor


def access_project(project_id: int, user: User | None) -> Project:
    """A project the user may see: published, or their own (organisers see all)."""
    project = db.session.get(Project, project_id)
    if project is None or not permissions.can_view_project(user, project):
        raise NotFound(_l("没有这个项目。"))
    return project


def access_own_project(project_id: int, user: User | None) -> Project:
    """A project the user may change."""
    project = db.session.get(Project, project_id)
    if project is None:
        raise NotFound(_l("没有这个项目。"))
    if not permissions.can_view_project(user, project):
        raise NotFound(_l("没有这个项目。"))
    permissions.require_project_editor(user, project)
    return project


def projects_of(exhibitor: Exhibitor) -> Sequence[Project]:
    return db.session.scalars(
        select(Project).where(Project.exhibitor_id == exhibitor.id).order_by(Project.id.desc())
    ).all()


@use_case()
def create_project(
    fair: Fair,
    *,
    user: User | None,
    title: str,
    category: str,
    price_fen: int,
    summary: str = "",
    description: str = "",
    tags: Sequence[str] = (),
    title_en: str = "",
    summary_en: str = "",
) -> Project:
    """An approved exhibitor adds a draft project to the fair."""
    exhibitor = exhibitor_of(fair, user)
    permissions.require_approved_exhibitor(user, exhibitor)
    assert exhibitor is not None  # noqa: S101 - checked just above
    project = Project(
        fair_id=fair.id,
        exhibitor=exhibitor,
        province=exhibitor.organisation.province,
        title=title.strip(),
        category=category,
        summary=summary.strip(),
        title_en=title_en.strip(),
        summary_en=summary_en.strip(),
        description_source=description,
        description_html=render_description(description),
        price_fen=price_fen,
        tags=_join_tags(tags),
        status=ProjectStatus.draft,
    )
    db.session.add(project)
    catalogue.index_project(project)
    return project


@use_case()
def update_project(project: Project, *, user: User | None, changes: dict[str, Any]) -> Project:
    """The project's own exhibitor edits it."""
    permissions.require_project_editor(user, project)
    if project.status is ProjectStatus.withdrawn:
        raise Conflict(_l("已撤回的项目不能再修改。"), code="withdrawn")
    for name in ("title", "summary", "title_en", "summary_en"):
        if name in changes:
            setattr(project, name, changes[name].strip())
    if "category" in changes:
        project.category = changes["category"]
    if "price_fen" in changes:
        project.price_fen = changes["price_fen"]
    if "description" in changes:
        project.description_source = changes["description"]
        project.description_html = render_description(changes["description"])
    if "tags" in changes:
        project.tags = _join_tags(changes["tags"])
    catalogue.index_project(project)
    return project


@use_case()
def publish_project(project: Project, *, user: User | None) -> Project:
    """Put a draft project into the catalogue."""
    permissions.require_project_editor(user, project)
    if not project.exhibitor.is_approved:
        raise Forbidden(_l("参展申请尚未通过审核。"), code="not_approved")
    if project.status is ProjectStatus.withdrawn:
        raise Conflict(_l("已撤回的项目不能再发布。"), code="withdrawn")
    if project.status is ProjectStatus.draft:
        fair = db.session.get(Fair, project.fair_id)
        assert fair is not None  # noqa: S101 - a project always belongs to a fair
        permissions.require_booth_fee_paid(fair, project.exhibitor)
        project.status = ProjectStatus.published
        project.published_at = utcnow()
        catalogue.index_project(project)
    return project


@use_case()
def withdraw_project(project: Project, *, user: User | None) -> Project:
    """Take a project out of the catalogue for good."""
    permissions.require_project_editor(user, project)
    project.status = ProjectStatus.withdrawn
    catalogue.index_project(project)
    return project


#: Enough for a gallery, a video or two and brochures; more is a mistake or abuse.
MAX_MEDIA_PER_PROJECT = 30


@use_case()
def add_media(project: Project, *, user: User | None, upload: BinaryIO, filename: str | None,
              media_root: Path) -> Media:
    """The project's exhibitor uploads an image, a video or a PDF to it.

    The file is checked and stored before the row is written; if the commit then fails, the
    stored file stays as an unreferenced (and harmless) content-addressed file.
    """
    permissions.require_project_editor(user, project)
    if project.status is ProjectStatus.withdrawn:
        raise Conflict(_l("已撤回的项目不能再修改。"), code="withdrawn")
    count = db.session.scalar(
        select(func.count()).select_from(Media).where(Media.project_id == project.id)
    )
    if (count or 0) >= MAX_MEDIA_PER_PROJECT:
        raise Conflict(_l("每个项目最多 %(count)d 个文件。", count=MAX_MEDIA_PER_PROJECT),
                       code="too_many_media")
    stored = media_files.store_upload(upload, media_root=media_root)
    item = Media(project=project, kind=stored.kind, sha256=stored.sha256,
                 content_type=stored.content_type, size=stored.size, width=stored.width,
                 height=stored.height, original_name=media_files.display_name(filename))
    db.session.add(item)
    return item


def access_media(media_id: int, user: User | None) -> Media:
    """A media row whose project the user may change."""
    item = db.session.get(Media, media_id)
    if item is None or not permissions.can_view_project(user, item.project):
        raise NotFound(_l("没有这个文件。"))
    permissions.require_project_editor(user, item.project)
    return item


def delete_media(item: Media, *, user: User | None, media_root: Path) -> None:
    """The project's exhibitor removes a file; the bytes go once nothing else uses them."""
    sha256, kind = item.sha256, item.kind
    still_used = _delete_media_row(item, user=user)
    # After the commit, so that a failed one never leaves a row without its file.
    if not still_used:
        media_files.discard(media_root, sha256, kind)


@use_case()
def _delete_media_row(item: Media, *, user: User | None) -> bool:
    permissions.require_project_editor(user, item.project)
    db.session.delete(item)
    db.session.flush()
    other = db.session.scalar(select(Media.id).where(Media.sha256 == item.sha256).limit(1))
    return other is not None


def media_for_download(sha256: str, user: User | None) -> Media:
    """A stored file the user may fetch: it belongs to a project they may see."""
    for item in db.session.scalars(select(Media).where(Media.sha256 == sha256)):
        if permissions.can_view_project(user, item.project):
            return item
    raise NotFound(_l("没有这个文件。"))


def _join_tags(tags: Sequence[str]) -> str:
    cleaned = []
    for tag in tags:
        tag = tag.replace(",", " ").strip()
        if tag and tag not in cleaned:
            cleaned.append(tag)
    return ",".join(cleaned)
