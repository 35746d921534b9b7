"""Exhibitor and project API."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import current_app, send_file
from flask_babel import lazy_gettext as _l
from flask_smorest import Blueprint
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from exhibitors import catalogue, service
from exhibitors import media as media_files
from exhibitors.models import Exhibitor, Media, MediaKind, Project
from exhibitors.schemas import (
    CataloguePageSchema,
    CatalogueQuerySchema,
    ExhibitorSchema,
    MediaSchema,
    MediaUploadSchema,
    ProjectInputSchema,
    ProjectSchema,
    ProjectUpdateSchema,
    RejectionSchema,
)
from fair import guard, headers, signals
from fair import service as fair_service
from fair.auth import current_user
from fair.errors import NotFound

blp = Blueprint("exhibitors", __name__, url_prefix="/api/v1",
                description="Exhibitors and their projects")
#: A stored file never runs script, whatever a browser takes it for.
MEDIA_POLICY = "default-src 'none'; sandbox"
media_blp = Blueprint("media", __name__, url_prefix="/media",
                      description="Uploaded files, by the SHA-256 of their bytes")

#: A stored file never changes under its hash.
IMMUTABLE = 365 * 24 * 3600


@blp.post("/fairs/<int:fair_id>/exhibitors")
@blp.response(201, ExhibitorSchema)
def apply(fair_id: int) -> Exhibitor:
    """Apply to the fair with the signed-in exhibitor's organisation."""
    return service.apply_to_fair(fair_service.access_fair(fair_id), user=current_user())


@blp.get("/fairs/<int:fair_id>/exhibitors")
@blp.response(200, ExhibitorSchema(many=True))
def list_exhibitors(fair_id: int) -> Sequence[Exhibitor]:
    """Every application to the fair (organisers)."""
    return service.list_exhibitors(fair_service.access_fair(fair_id), organiser=current_user())


@blp.post("/exhibitors/<int:exhibitor_id>/approve")
@blp.response(200, ExhibitorSchema)
def approve(exhibitor_id: int) -> Exhibitor:
    """Approve an application (organisers)."""
    return service.approve_exhibitor(service.access_exhibitor(exhibitor_id),
                                     organiser=current_user())


@blp.post("/exhibitors/<int:exhibitor_id>/reject")
@blp.arguments(RejectionSchema)
@blp.response(200, ExhibitorSchema)
def reject(data: dict[str, Any], exhibitor_id: int) -> Exhibitor:
    """Reject an application with a reason the exhibitor reads (organisers)."""
    return service.reject_exhibitor(service.access_exhibitor(exhibitor_id),
                                    organiser=current_user(), reason=data["reason"])


@blp.post("/fairs/<int:fair_id>/projects")
@blp.arguments(ProjectInputSchema)
@blp.response(201, ProjectSchema)
def create_project(data: dict[str, Any], fair_id: int) -> Project:
    """Create a draft project (approved exhibitors)."""
    return service.create_project(
        fair_service.access_fair(fair_id),
        user=current_user(),
        title=data["title"],
        category=data["category"],
        price_fen=data["price_fen"],
        summary=data["summary"],
        title_en=data["title_en"],
        summary_en=data["summary_en"],
        description=data["description"],
        tags=data["tags"],
    )


@blp.get("/fairs/<int:fair_id>/projects")
@blp.arguments(CatalogueQuerySchema, location="query")
@blp.response(200, CataloguePageSchema)
def search_catalogue(query: catalogue.CatalogueQuery, fair_id: int) -> dict[str, Any]:
    """Search the fair's catalogue, with facet counts (published projects, and your drafts)."""
    page = catalogue.search(fair_service.access_fair(fair_id), viewer=current_user(),
                            query=query)
    signals.catalogue_searched.send(None, fair_id=fair_id, terms=query.q,
                                    facets=query.filters, results=page.total)
    return {"items": page.items, "total": page.total, "facets": page.facets,
            "page": query.page, "per_page": query.per_page}


@blp.get("/projects/<int:project_id>")
@blp.response(200, ProjectSchema)
def get_project(project_id: int) -> Project:
    """A published project, or one of the signed-in exhibitor's own."""
    shown = service.access_project(project_id, current_user())
    signals.project_viewed.send(None, project=shown)
    return shown


@blp.patch("/projects/<int:project_id>")
@blp.arguments(ProjectUpdateSchema(partial=True))
@blp.response(200, ProjectSchema)
def update_project(data: dict[str, Any], project_id: int) -> Project:
    """Edit a project (its exhibitor)."""
    user = current_user()
    return service.update_project(service.access_own_project(project_id, user), user=user,
                                  changes=data)


@blp.post("/projects/<int:project_id>/publish")
@blp.response(200, ProjectSchema)
def publish(project_id: int) -> Project:
    """Publish a draft project to the catalogue (its exhibitor)."""
    user = current_user()
    return service.publish_project(service.access_own_project(project_id, user), user=user)


@blp.post("/projects/<int:project_id>/withdraw")
@blp.response(200, ProjectSchema)
def withdraw(project_id: int) -> Project:
    """Withdraw a project from the catalogue (its exhibitor)."""
    user = current_user()
    return service.withdraw_project(service.access_own_project(project_id, user), user=user)


@blp.post("/projects/<int:project_id>/media")
@guard.large_body(media_files.MAX_UPLOAD_BODY, file_stream=media_files.upload_stream)
@blp.arguments(MediaUploadSchema, location="files")
@blp.response(201, MediaSchema)
def upload_media(files: dict[str, FileStorage], project_id: int) -> Media:
    """Add an image, a video or a PDF to a project (its exhibitor)."""
    user = current_user()
    upload = files["file"]
    return service.add_media(service.access_own_project(project_id, user), user=user,
                             upload=upload.stream, filename=upload.filename,
                             media_root=_media_root())


@blp.delete("/media/<int:media_id>")
@blp.response(204)
def delete_media(media_id: int) -> None:
    """Remove a file from a project (its exhibitor)."""
    user = current_user()
    service.delete_media(service.access_media(media_id, user), user=user,
                         media_root=_media_root())


@media_blp.get("/<sha256>")
@headers.own_policy(MEDIA_POLICY)
def download(sha256: str) -> Response:
    """A stored file: an image, a video (with ranges) or a PDF (as an attachment)."""
    item = service.media_for_download(sha256, current_user())
    path = media_files.file_path(_media_root(), item.sha256, item.kind)
    pdf = item.kind is MediaKind.pdf
    response = send_file(
        path, mimetype=item.content_type, conditional=True, etag=item.sha256,
        max_age=IMMUTABLE, as_attachment=pdf,
        download_name=_pdf_name(item) if pdf else None,
    )
    return _harden(response, item)


@media_blp.get("/<sha256>/thumb")
@headers.own_policy(MEDIA_POLICY)
def thumbnail(sha256: str) -> Response:
    """An image's thumbnail, at most 480 pixels wide and high."""
    item = service.media_for_download(sha256, current_user())
    if item.kind is not MediaKind.image:
        raise NotFound(_l("只有图片有缩略图。"))
    path = media_files.thumbnail_path(_media_root(), item.sha256)
    response = send_file(path, mimetype="image/webp", conditional=True,
                         etag=f"{item.sha256}-thumb", max_age=IMMUTABLE)
    return _harden(response, item)


def _media_root() -> Path:
    return Path(current_app.config["MEDIA_ROOT"])


def _pdf_name(item: Media) -> str:
    name = item.original_name or "document.pdf"
    return name if name.lower().endswith(".pdf") else f"{name}.pdf"


def _harden(response: Response, item: Media) -> Response:
    """Never sniffed into something else, never able to run script; drafts are private."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.cache_control.immutable = True
    if not item.project.is_published:
        response.cache_control.public = False
        response.cache_control.private = True
    return response
