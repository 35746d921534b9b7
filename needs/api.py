"""The procurement needs API (供需对接): needs, responses, response -> intent, matches."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from deals.models import Intent
from deals.schemas import DealSchema, IdempotencyHeaderSchema
from fair import service as fair_service
from fair.auth import current_user
from needs import exports, service
from needs.models import Need, NeedResponse
from needs.schemas import (
    MatchListSchema,
    NeedExportQuerySchema,
    NeedInputSchema,
    NeedInsightsSchema,
    NeedPageSchema,
    NeedQuerySchema,
    NeedSchema,
    NeedUpdateSchema,
    ResponseInputSchema,
    ResponseListSchema,
    ResponseSchema,
    ResponseUpdateSchema,
)

blp = Blueprint("needs", __name__, url_prefix="/api/v1",
                description="Procurement needs (供需对接): needs, responses, matches")


@blp.post("/fairs/<int:fair_id>/needs")
@blp.arguments(NeedInputSchema)
@blp.response(201, NeedSchema)
def create_need(data: dict[str, Any], fair_id: int) -> Need:
    """Write a need (verified buyers): a draft, or open at once with `publish: true`."""
    return service.create_need(fair_service.access_fair(fair_id), buyer=current_user(), **data)


@blp.get("/fairs/<int:fair_id>/needs")
@blp.arguments(NeedQuerySchema, location="query")
@blp.response(200, NeedPageSchema)
def search_needs(query: service.NeedQuery, fair_id: int) -> dict[str, Any]:
    """The fair's open (then closed) needs, with the catalogue's search and facets."""
    page = service.search_needs(fair_service.access_fair(fair_id), query=query)
    return {"items": page.items, "total": page.total, "facets": page.facets,
            "page": query.page, "per_page": query.per_page}


@blp.get("/fairs/<int:fair_id>/needs/export")
@blp.arguments(NeedExportQuerySchema, location="query")
@blp.response(200, description="CSV (UTF-8 with BOM) or XLSX")
@blp.doc(responses={"200": {"content": {
    content_type: {"schema": {"type": "string", "format": "binary"}}
    for content_type in (exports.CSV_TYPE, exports.XLSX_TYPE)}}})
def export_needs(query: dict[str, str], fair_id: int) -> Response:
    """Needs and their responses, one row per response, as CSV or Excel (organisers)."""
    fair = fair_service.access_fair(fair_id)
    export = exports.render(service.export_rows(fair, organiser=current_user()),
                            file_format=query["format"], title=fair.name)
    filename = f"needs-fair-{fair.id}.{export.extension}"
    return Response(export.body, content_type=export.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@blp.get("/fairs/<int:fair_id>/insights/needs")
@blp.response(200, NeedInsightsSchema)
def insights(fair_id: int) -> dict[str, Any]:
    """Needs, responses, match and conversion rates per category and province (organisers)."""
    fair = fair_service.access_fair(fair_id)
    user = current_user()
    return {by: service.need_figures(fair, organiser=user, by=by)
            for by in ("category", "province")}


@blp.get("/fairs/<int:fair_id>/needs/matching")
@blp.response(200, MatchListSchema)
def matching(fair_id: int) -> dict[str, Any]:
    """Open needs that match the signed-in exhibitor's projects."""
    return {"items": service.matching_needs(fair_service.access_fair(fair_id),
                                            user=current_user())}


@blp.get("/needs/<int:need_id>")
@blp.response(200, NeedSchema)
def get_need(need_id: int) -> Need:
    """An open or closed need; drafts and withdrawn ones to their buyer and organisers."""
    return service.access_need(need_id, current_user())


@blp.patch("/needs/<int:need_id>")
@blp.arguments(NeedUpdateSchema(partial=True))
@blp.response(200, NeedSchema)
def update_need(data: dict[str, Any], need_id: int) -> Need:
    """Edit a draft (its buyer)."""
    user = current_user()
    return service.update_need(service.access_need(need_id, user), buyer=user, changes=data)


@blp.post("/needs/<int:need_id>/open")
@blp.response(200, NeedSchema)
def open_need(need_id: int) -> Need:
    """Publish a draft (its buyer): matching exhibitors are told."""
    user = current_user()
    return service.open_need(service.access_need(need_id, user), buyer=user)


@blp.post("/needs/<int:need_id>/close")
@blp.response(200, NeedSchema)
def close_need(need_id: int) -> Need:
    """Stop taking responses (its buyer)."""
    user = current_user()
    return service.close_need(service.access_need(need_id, user), buyer=user)


@blp.post("/needs/<int:need_id>/withdraw")
@blp.response(200, NeedSchema)
def withdraw_need(need_id: int) -> Need:
    """Withdraw a draft or open need (its buyer)."""
    user = current_user()
    return service.withdraw_need(service.access_need(need_id, user), buyer=user)


@blp.get("/needs/<int:need_id>/responses")
@blp.response(200, ResponseListSchema)
def list_responses(need_id: int) -> dict[str, Any]:
    """The responses you may see: all (the need's buyer, organisers) or your own."""
    user = current_user()
    return {"items": service.list_responses(service.access_need(need_id, user), user=user)}


@blp.post("/needs/<int:need_id>/responses")
@blp.arguments(ResponseInputSchema)
@blp.response(201, ResponseSchema)
def respond(data: dict[str, Any], need_id: int) -> NeedResponse:
    """Answer an open need with one of your published projects (approved exhibitors)."""
    user = current_user()
    return service.respond_to_need(service.access_need(need_id, user), user=user, **data)


@blp.get("/responses/<int:response_id>")
@blp.response(200, ResponseSchema)
def get_response(response_id: int) -> NeedResponse:
    """A response (the need's buyer, the responding exhibitor, organisers)."""
    return service.access_response(response_id, current_user())


@blp.patch("/responses/<int:response_id>")
@blp.arguments(ResponseUpdateSchema)
@blp.response(200, ResponseSchema)
def update_response(data: dict[str, Any], response_id: int) -> NeedResponse:
    """Change your offer, until the buyer has acted on it."""
    user = current_user()
    return service.update_response(service.access_response(response_id, user), user=user,
                                   **data)


@blp.post("/responses/<int:response_id>/shortlist")
@blp.response(200, ResponseSchema)
def shortlist(response_id: int) -> NeedResponse:
    """Shortlist a response (the need's buyer)."""
    user = current_user()
    return service.shortlist_response(service.access_response(response_id, user), buyer=user)


@blp.post("/responses/<int:response_id>/decline")
@blp.response(200, ResponseSchema)
def decline(response_id: int) -> NeedResponse:
    """Decline a response (the need's buyer)."""
    user = current_user()
    return service.decline_response(service.access_response(response_id, user), buyer=user)


@blp.post("/responses/<int:response_id>/intent")
@blp.arguments(IdempotencyHeaderSchema, location="headers")
@blp.response(201, DealSchema)
def sign(headers: dict[str, str], response_id: int) -> Intent:
    """Turn a response into an intent to sign at its quoted price (the need's buyer), through
    the same signing path as every intent: the same Idempotency-Key again answers the same."""
    user = current_user()
    return service.sign_response(service.access_response(response_id, user), buyer=user,
                                 idempotency_key=headers["idempotency_key"])
