"""Exhibitor, project and media payloads."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_smorest.fields import Upload
from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_dump,
    validate,
    validates_schema,
)

from exhibitors.catalogue import MAX_PER_PAGE, SORTS, CatalogueQuery, Facets
from exhibitors.models import ExhibitorStatus, MediaKind, ProjectStatus
from fair.accounts.schemas import OrganisationSchema, StrictSchema, Text
from fair.money import YuanField
from fair.reference import CATEGORIES, PROVINCES
from fair.schemas import UtcDateTime

TAG = validate.Length(min=1, max=30)
#: Characters of a project's description: with the other fields, a JSON body of at most 64 KB
#: even when every character is sent escaped (six bytes each).
MAX_DESCRIPTION = 8_000


class RejectionSchema(StrictSchema):
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=500),
                        metadata={"description": "Why; the exhibitor reads it"})


class ExhibitorSchema(Schema):
    id = fields.Int()
    fair_id = fields.Int()
    status = fields.Enum(ExhibitorStatus, by_value=True)
    rejection_reason = fields.Str()
    organisation = fields.Nested(OrganisationSchema)
    applied_at = UtcDateTime()
    decided_at = UtcDateTime(allow_none=True)


class ProjectInputSchema(StrictSchema):
    title = Text(required=True, validate=validate.Length(min=2, max=200))
    category = fields.Str(
        required=True, validate=validate.OneOf(list(CATEGORIES), error=_l("未知的类别。"))
    )
    summary = Text(load_default="", validate=validate.Length(max=500))
    title_en = Text(load_default="", validate=validate.Length(max=200),
                    metadata={"description": "English title, optional"})
    summary_en = Text(load_default="", validate=validate.Length(max=500),
                      metadata={"description": "English summary, optional"})
    description = fields.Str(
        load_default="",
        validate=validate.Length(max=MAX_DESCRIPTION),
        metadata={"description": "Markdown or HTML; sanitised before it is shown"},
    )
    price_fen = YuanField(
        required=True, data_key="price", metadata={"description": "reference price in yuan"}
    )
    tags = fields.List(Text(validate=TAG), load_default=list,
                       validate=validate.Length(max=20))


class ProjectUpdateSchema(ProjectInputSchema):
    """The same fields, each optional: load it with ``partial=True``."""


class MediaUploadSchema(Schema):
    file = Upload(required=True, metadata={
        "description": "JPEG, PNG or WebP image (15 MB), MP4 video (200 MB) or PDF (30 MB); "
                       "recognised by its content, not its name"})


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
    title_en = fields.Str()
    summary_en = fields.Str()
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
    created_at = UtcDateTime()
    published_at = UtcDateTime(allow_none=True)


class CatalogueQuerySchema(Schema):
    """The catalogue's query string; unknown parameters (such as ``lang``) are ignored."""

    class Meta:
        unknown = EXCLUDE

    q = Text(load_default="", validate=validate.Length(max=100),
                   metadata={"description": "Words to find, Chinese or English"})
    category = fields.Str(
        load_default=None, validate=validate.OneOf(list(CATEGORIES), error=_l("未知的类别。"))
    )
    province = fields.Str(
        load_default=None,
        validate=validate.OneOf(list(PROVINCES), error=_l("未知的省份代码。")),
        metadata={"description": "ISO 3166-2:CN code, such as CN-SC"},
    )
    min_price_fen = YuanField(data_key="min_price", allow_zero=True, load_default=None,
                              metadata={"description": "lowest reference price in yuan"})
    max_price_fen = YuanField(data_key="max_price", allow_zero=True, load_default=None,
                              metadata={"description": "highest reference price in yuan"})
    sort = fields.Str(load_default="relevance", validate=validate.OneOf(SORTS))
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=10_000))
    per_page = fields.Int(load_default=24, validate=validate.Range(min=1, max=MAX_PER_PAGE))

    @validates_schema
    def check_price_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high = data.get("min_price_fen"), data.get("max_price_fen")
        if low is not None and high is not None and low > high:
            raise ValidationError(_l("最高价格不能低于最低价格。"), "max_price")

    @post_load
    def make_query(self, data: dict[str, Any], **kwargs: Any) -> CatalogueQuery:
        return CatalogueQuery(**data)


class NameSchema(Schema):
    zh = fields.Str()
    en = fields.Str()


class FacetValueSchema(Schema):
    code = fields.Str()
    name = fields.Nested(NameSchema)
    count = fields.Int()


class PriceRangeSchema(Schema):
    min = fields.Str(metadata={"description": "yuan, included"})
    max = fields.Str(allow_none=True, metadata={"description": "yuan, excluded; null: no limit"})
    count = fields.Int()


class FacetsSchema(Schema):
    """How many projects match the text and every other filter, per value of each facet."""

    category = fields.List(fields.Nested(FacetValueSchema))
    province = fields.List(fields.Nested(FacetValueSchema))
    price = fields.List(fields.Nested(PriceRangeSchema))

    @pre_dump
    def name_codes(self, facets: Facets, **kwargs: Any) -> dict[str, Any]:
        return {
            "category": [{"code": code, "name": CATEGORIES[code], "count": count}
                         for code, count in facets["category"].items()],
            "province": [{"code": code, "name": PROVINCES[code], "count": count}
                         for code, count in facets["province"].items()],
            "price": facets["price"],
        }


class CatalogueItemSchema(ProjectSchema):
    """A project as a catalogue lists it: everything but its long description."""

    class Meta:
        exclude = ("description", "description_html")


class CataloguePageSchema(Schema):
    items = fields.List(fields.Nested(CatalogueItemSchema))
    total = fields.Int()
    page = fields.Int()
    per_page = fields.Int()
    facets = fields.Nested(FacetsSchema)
