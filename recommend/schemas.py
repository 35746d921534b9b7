"""The recommendations API's bodies: the query, each project with its score and reasons."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from exhibitors.schemas import ProjectSchema
from recommend.service import MAX_LIMIT


class RecommendationsQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Int(load_default=10, validate=validate.Range(min=1, max=MAX_LIMIT))


class ReasonSchema(Schema):
    code = fields.Str(metadata={"description": "province_signed, kept, favourited, signed, "
                                               "shared, viewed, category, seen or popular"})
    text = fields.Str(metadata={"description": "The reason in the page's language"})


class RecommendationSchema(Schema):
    project = fields.Nested(ProjectSchema)
    score = fields.Float()
    reasons = fields.List(fields.Nested(ReasonSchema))


class RecommendationsSchema(Schema):
    items = fields.List(fields.Nested(RecommendationSchema))


class AlsoItemSchema(Schema):
    project = fields.Nested(ProjectSchema)
    buyers = fields.Int(metadata={"description": "Distinct buyers behind it, 3 or more"})


class AlsoSchema(Schema):
    viewed = fields.List(fields.Nested(AlsoItemSchema))
    signed = fields.List(fields.Nested(AlsoItemSchema))


class WeekSchema(Schema):
    week = fields.Date(metadata={"description": "The week's Monday (the fair's local date)"})
    shown = fields.Int(metadata={"description": "Recommendation lists shown"})
    clicked = fields.Int(metadata={"description": "Projects opened from a recommendation"})
    intents = fields.Int(metadata={"description": "Intents for a project opened from one"})


class WeeksSchema(Schema):
    weeks = fields.List(fields.Nested(WeekSchema))
