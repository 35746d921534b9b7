"""Fair payloads."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from fair.accounts.schemas import StrictSchema
from fair.models import FairStatus


class FairSchema(StrictSchema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=2, max=200))
    starts_at = fields.AwareDateTime(required=True, default_timezone=None)
    ends_at = fields.AwareDateTime(required=True, default_timezone=None)
    status = fields.Enum(FairStatus, by_value=True, dump_only=True)

    @validates_schema
    def check_dates(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "starts_at" in data and "ends_at" in data and data["ends_at"] <= data["starts_at"]:
            raise ValidationError("The fair must end after it starts.", "ends_at")


class FairUpdateSchema(StrictSchema):
    name = fields.Str(validate=validate.Length(min=2, max=200))
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    status = fields.Enum(FairStatus, by_value=True)
