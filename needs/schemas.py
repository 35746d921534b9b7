"""Procurement need and response payloads."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from exhibitors.schemas import MAX_DESCRIPTION, FacetsSchema
from fair.accounts.schemas import StrictSchema, Text
from fair.money import YuanField
from fair.reference import CATEGORIES, PROVINCES
from fair.schemas import UtcDateTime
from needs.models import NeedStatus, ResponseStatus
from needs.service import MAX_NOTE_LENGTH, MAX_RESPONSES, NeedQuery


class NeedInputSchema(StrictSchema):
    title = Text(required=True, validate=validate.Length(min=2, max=200))
    description = fields.Str(load_default="", validate=validate.Length(max=MAX_DESCRIPTION),
                             metadata={"description": "Markdown or HTML; sanitised"})
    category = fields.Str(required=True,
                          validate=validate.OneOf(list(CATEGORIES), error=_l("未知的类别。")))
    province = fields.Str(required=True,
                          validate=validate.OneOf(list(PROVINCES), error=_l("未知的省份代码。")),
                          metadata={"description": "the region it is for, ISO 3166-2:CN"})
    city = Text(load_default="", validate=validate.Length(max=50),
                metadata={"description": "an optional city or district"})
    budget_min_fen = YuanField(required=True, data_key="budget_min",
                               metadata={"description": "yuan"})
    budget_max_fen = YuanField(required=True, data_key="budget_max",
                               metadata={"description": "yuan"})
    deadline = UtcDateTime(required=True, metadata={"description": "in the future"})
    max_responses = fields.Int(required=True, strict=True,
                               validate=validate.Range(min=1, max=MAX_RESPONSES))
    publish = fields.Bool(load_default=False,
                          metadata={"description": "open it at once instead of a draft"})

    @validates_schema
    def check_budget(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high = data.get("budget_min_fen"), data.get("budget_max_fen")
        if low is not None and high is not None and low > high:
            raise ValidationError(_l("预算上限不能低于预算下限。"), "budget_max")


class NeedUpdateSchema(NeedInputSchema):
    """The same fields, each optional (drafts only)."""

    class Meta:
        exclude = ("publish",)


class NeedSchema(Schema):
    id = fields.Int()
    fair_id = fields.Int()
    title = fields.Str()
    description = fields.Str(attribute="description_source")
    description_html = fields.Str()
    category = fields.Str()
    province = fields.Str()
    city = fields.Str()
    budget_min = YuanField(attribute="budget_min_fen")
    budget_max = YuanField(attribute="budget_max_fen")
    deadline = UtcDateTime()
    max_responses = fields.Int()
    response_count = fields.Int()
    status = fields.Enum(NeedStatus, by_value=True, attribute="shown_status")
    organisation = fields.Function(lambda need: {"name": need.organisation.name,
                                                 "province": need.organisation.province})
    created_at = UtcDateTime()
    opened_at = UtcDateTime(allow_none=True)


class NeedQuerySchema(Schema):
    """The public list's query string: the catalogue's filters, budget in yuan."""

    class Meta:
        unknown = EXCLUDE

    q = Text(load_default="", validate=validate.Length(max=100))
    category = fields.Str(load_default=None,
                          validate=validate.OneOf(list(CATEGORIES), error=_l("未知的类别。")))
    province = fields.Str(load_default=None,
                          validate=validate.OneOf(list(PROVINCES), error=_l("未知的省份代码。")))
    min_budget_fen = YuanField(data_key="min_budget", allow_zero=True, load_default=None)
    max_budget_fen = YuanField(data_key="max_budget", allow_zero=True, load_default=None)
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=10_000))
    per_page = fields.Int(load_default=24, validate=validate.Range(min=1, max=100))

    @validates_schema
    def check_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high = data.get("min_budget_fen"), data.get("max_budget_fen")
        if low is not None and high is not None and low > high:
            raise ValidationError(_l("预算上限不能低于预算下限。"), "max_budget")

    @post_load
    def make_query(self, data: dict[str, Any], **kwargs: Any) -> NeedQuery:
        return NeedQuery(**data)


class NeedExportQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    format = fields.Str(load_default="csv", validate=validate.OneOf(["csv", "xlsx"]))


class NeedPageSchema(Schema):
    items = fields.List(fields.Nested(NeedSchema))
    total = fields.Int()
    page = fields.Int()
    per_page = fields.Int()
    facets = fields.Nested(FacetsSchema)


class ResponseInputSchema(StrictSchema):
    project_id = fields.Int(required=True, strict=True)
    price_fen = YuanField(required=True, data_key="price", metadata={"description": "yuan"})
    note = Text(load_default="", validate=validate.Length(max=MAX_NOTE_LENGTH))


class ResponseUpdateSchema(StrictSchema):
    price_fen = YuanField(data_key="price", metadata={"description": "yuan"})
    note = Text(validate=validate.Length(max=MAX_NOTE_LENGTH))


class ResponseSchema(Schema):
    id = fields.Int()
    need_id = fields.Int()
    project_id = fields.Int()
    project = fields.Function(lambda response: {"id": response.project.id,
                                                "title": response.project.title})
    exhibitor_id = fields.Int()
    organisation = fields.Function(lambda response: {
        "name": response.exhibitor.organisation.name,
        "province": response.exhibitor.organisation.province})
    price = YuanField(attribute="price_fen")
    note = fields.Str()
    status = fields.Enum(ResponseStatus, by_value=True)
    created_at = UtcDateTime()
    updated_at = UtcDateTime(allow_none=True)
    decided_at = UtcDateTime(allow_none=True)


class ResponseListSchema(Schema):
    items = fields.List(fields.Nested(ResponseSchema))


class MatchSchema(Schema):
    need = fields.Nested(NeedSchema)
    project = fields.Function(lambda match: {"id": match.project.id,
                                             "title": match.project.title})
    score = fields.Int()


class MatchListSchema(Schema):
    items = fields.List(fields.Nested(MatchSchema))


class NeedFiguresSchema(Schema):
    key = fields.Str(metadata={"description": "a category, or a province code"})
    needs = fields.Int()
    responses = fields.Int()
    matched_needs = fields.Int()
    signed_responses = fields.Int()
    match_rate = fields.Int(metadata={"description": "whole percent"})
    conversion_rate = fields.Int(metadata={"description": "whole percent"})


class NeedInsightsSchema(Schema):
    category = fields.List(fields.Nested(NeedFiguresSchema))
    province = fields.List(fields.Nested(NeedFiguresSchema))
