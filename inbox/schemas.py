"""Notification payloads."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from fair.accounts.schemas import StrictSchema
from fair.schemas import UtcDateTime
from inbox import service


class NotificationSchema(Schema):
    id = fields.Int()
    kind = fields.Str()
    text = fields.Function(service.text_of, metadata={"description": "in the reader's language"})
    link = fields.Str()
    data = fields.Dict()
    created_at = UtcDateTime()
    read_at = UtcDateTime(allow_none=True)


class InboxSchema(Schema):
    items = fields.List(fields.Nested(NotificationSchema))
    unread = fields.Int()


class UnreadSchema(Schema):
    unread = fields.Int()


class MarkReadSchema(StrictSchema):
    ids = fields.List(fields.Int(strict=True), load_default=None,
                      validate=validate.Length(max=500),
                      metadata={"description": "these notifications; none: all of them"})
