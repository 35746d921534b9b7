"""The recommendations API's bodies: the query, each project with its score and reasons."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from exhibitors.schemas import ProjectSchema
from recommend.service import MAX_LIMIT, Card


class RecommendationsQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Int(load_default=10, validate=validate.Range(min=1, max=MAX_LIMIT))


class CardField(fields.Nested):
    """A project's card, whose body ProjectSchema dumped when the cards were loaded
    (recommend.service.Card): passed through as it is, and documented as ProjectSchema."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ProjectSchema, **kwargs)

    def _serialize(self, value: Card | None, attr: str | None, obj: Any,
                   **kwargs: Any) -> dict[str, Any] | None:
        return None if value is None else value.body


class ReasonSchema(Schema):
    code = fields.Str(metadata={"description": "province_signed, kept, favourited, signed, "
                                               "shared, viewed, category, seen or popular"})
    text = fields.Str(metadata={"description": "The reason in the page's language"})


class RecommendationSchema(Schema):
    project = CardField()
    score = fields.Float()
    reasons = fields.List(fields.Nested(ReasonSchema))


class RecommendationsSchema(Schema):
    items = fields.List(fields.Nested(RecommendationSchema))


class AlsoItemSchema(Schema):
    project = CardField()
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
