"""Account payloads."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from fair.guard import MAX_ID
from fair.reference import PROVINCES

ROLES_OPEN_TO_REGISTRATION = ("exhibitor", "buyer")


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class Text(fields.String):
    """Text as people type it: trimmed before its length is checked, so that two spaces are no
    name. The document says so exactly: a pattern asks for as many non-space characters as the
    least length, and the most length holds for the text as sent too."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        least = max((validator.min or 0 for validator in self.validators
                     if isinstance(validator, validate.Length)), default=0)
        if least:
            self.metadata = {**self.metadata,
                             "pattern": r"\S" if least == 1 else r"\S[\s\S]*\S"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        for validator in self.validators:
            if (isinstance(validator, validate.Length) and validator.max is not None
                    and len(text) > validator.max):
                raise ValidationError(_l("最多 %(max)s 个字。", max=validator.max))
        return text.strip()


class Id(fields.Integer):
    """A database id: 1 to 2^31-1, the range of the columns; strict, so "1" is refused."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("strict", True)
        kwargs.setdefault("validate", validate.Range(min=1, max=MAX_ID))
        super().__init__(**kwargs)


class OrganisationSchema(StrictSchema):
    id = fields.Int(dump_only=True)
    name = Text(required=True, validate=validate.Length(min=2, max=200))
    province = fields.Str(
        required=True,
        validate=validate.OneOf(list(PROVINCES), error=_l("未知的省份代码。")),
        metadata={"description": "ISO 3166-2:CN code, such as CN-SC"},
    )
    verified = fields.Boolean(
        dump_only=True, attribute="is_verified",
        metadata={"description": "A buyer's organisation verified by the organisers: its "
                                 "intents count in the public totals"},
    )
    verified_at = fields.DateTime(dump_only=True, allow_none=True)


class RegisterSchema(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.Str(
        required=True,
        load_only=True,
        validate=validate.Length(min=10, max=200, error=_l("请使用 10 到 200 个字符。")),
    )
    name = Text(required=True, validate=validate.Length(min=1, max=100),
                metadata={"description": "contact person"})
    phone = fields.Str(load_default="", validate=validate.Length(max=30),
                       metadata={"description": "contact phone; required of buyers, shown to "
                                              "the exhibitors of the projects they sign for"})
    role = fields.Str(required=True, validate=validate.OneOf(ROLES_OPEN_TO_REGISTRATION))
    organisation = fields.Nested(OrganisationSchema, required=True)


class TokenRequestSchema(StrictSchema):
    email = fields.Str(required=True)
    password = fields.Str(required=True, load_only=True)


class TokenSchema(Schema):
    token = fields.Str(required=True)


class UserSchema(Schema):
    id = fields.Int()
    email = fields.Str()
    name = fields.Str()
    role = fields.Function(lambda user: user.role.value)
    organisation = fields.Nested(OrganisationSchema, allow_none=True)
