"""Exhibitor, project and media payloads."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from exhibitors.models import ExhibitorStatus, MediaKind, ProjectStatus
from fair.accounts.schemas import OrganisationSchema, StrictSchema
from fair.money import YuanField
from fair.reference import CATEGORIES

TAG = validate.Length(min=1, max=30)


class ExhibitorSchema(Schema):
    id = fields.Int()
    fair_id = fields.Int()
    status = fields.Enum(ExhibitorStatus, by_value=True)
    organisation = fields.Nested(OrganisationSchema)
    applied_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)


class ProjectInputSchema(StrictSchema):
    title = fields.Str(required=True, validate=validate.Length(min=2, max=200))
    category = fields.Str(
        required=True, validate=validate.OneOf(list(CATEGORIES), error="Unknown category.")
    )
    summary = fields.Str(load_default="", validate=validate.Length(max=500))
    description = fields.Str(
        load_default="",
        validate=validate.Length(max=50_000),
        metadata={"description": "Markdown or HTML; sanitised before it is shown"},
    )
    price_fen = YuanField(
        required=True, data_key="price", metadata={"description": "reference price in yuan"}
    )
    tags = fields.List(fields.Str(validate=TAG), load_default=list,
                       validate=validate.Length(max=20))


class ProjectUpdateSchema(ProjectInputSchema):
    """The same fields, each optional: load it with ``partial=True``."""


class MediaSchema(Schema):
    id = fields.Int()
    kind = fields.Enum(MediaKind, by_value=True)
    content_type = fields.Str()
    size = fields.Int()
    width = fields.Int(allow_none=True)
    height = fields.Int(allow_none=True)
    original_name = fields.Str()
    url = fields.Function(lambda media: f"/media/{media.sha256}")
    thumbnail_url = fields.Function(
        lambda media: f"/media/{media.sha256}/thumb" if media.kind is MediaKind.image else None
    )


class ProjectSchema(Schema):
    id = fields.Int()
    fair_id = fields.Int()
    exhibitor_id = fields.Int()
    title = fields.Str()
    category = fields.Str()
    province = fields.Str()
    summary = fields.Str()
    description = fields.Str(attribute="description_source")
    description_html = fields.Str()
    price = YuanField(attribute="price_fen")
    tags = fields.List(fields.Str(), attribute="tag_list")
    status = fields.Enum(ProjectStatus, by_value=True)
    organisation = fields.Function(
        lambda project: {"name": project.exhibitor.organisation.name,
                         "province": project.exhibitor.organisation.province}
    )
    media = fields.List(fields.Nested(MediaSchema))
    created_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)
