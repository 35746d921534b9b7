"""Account payloads."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import RAISE, Schema, fields, validate

from fair.reference import PROVINCES

ROLES_OPEN_TO_REGISTRATION = ("exhibitor", "buyer")


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class OrganisationSchema(StrictSchema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=2, max=200))
    province = fields.Str(
        required=True,
        validate=validate.OneOf(list(PROVINCES), error=_l("未知的省份代码。")),
        metadata={"description": "ISO 3166-2:CN code, such as CN-SC"},
    )


class RegisterSchema(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.Str(
        required=True,
        load_only=True,
        validate=validate.Length(min=10, max=200, error=_l("请使用 10 到 200 个字符。")),
    )
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100),
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
