"""Payloads of the /live namespace: what clients send and what the server sends them.

Unknown fields are refused (marshmallow's default), so a payload that drifts from DESIGN's table
fails its tests instead of reaching a browser.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from marshmallow import Schema, fields, validate

from fair.money import YuanField
from fair.reference import PROVINCES

#: Totals are sums of many intents: only the pattern of an amount limits them, not one deal's cap.
_ANY_TOTAL = sys.maxsize


class ConnectAuthSchema(Schema):
    """The `auth` object of a connection; without a token the session cookie counts."""

    token = fields.String(load_default=None, validate=validate.Length(min=1, max=200))


class JoinDashboardSchema(Schema):
    fair_id = fields.Integer(required=True, strict=True)


class HallSummarySchema(Schema):
    """A hall as the dashboard lists it."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)


class ProjectRefSchema(Schema):
    id = fields.Integer(required=True, strict=True)
    title = fields.String(required=True)


class DealEventSchema(Schema):
    """One intent in a `deals` message."""

    id = fields.Integer(required=True, strict=True)
    hall_id = fields.Integer(required=True, strict=True, allow_none=True)
    project = fields.Nested(ProjectRefSchema, required=True)
    buyer_province = fields.String(required=True, validate=validate.OneOf(PROVINCES))
    amount = YuanField(required=True)
    created_at = fields.AwareDateTime(required=True, format="iso")


class DealsMessageSchema(Schema):
    """The `deals` event: one or more new intents of a fair, oldest first."""

    fair_id = fields.Integer(required=True, strict=True)
    deals = fields.List(fields.Nested(DealEventSchema), required=True,
                        validate=validate.Length(min=1))


class BreakdownEntrySchema(Schema):
    amount = YuanField(required=True, allow_zero=True, maximum_fen=_ANY_TOTAL)
    deal_count = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


def _breakdown() -> fields.Dict:
    return fields.Dict(keys=fields.String(), values=fields.Nested(BreakdownEntrySchema),
                       required=True)


class TotalsSchema(Schema):
    """The `totals` event and the `totals` of acknowledgements: a full snapshot with its seq."""

    seq = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    fair_id = fields.Integer(required=True, strict=True)
    amount = YuanField(required=True, allow_zero=True, maximum_fen=_ANY_TOTAL)
    deal_count = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    project_count = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    buyer_count = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    by_buyer_province = _breakdown()
    by_exhibitor_province = _breakdown()
    by_category = _breakdown()
    by_hall = _breakdown()
    by_exhibitor = _breakdown()


#: The schema of every server-to-client event that livehalls.broadcast sends.
MESSAGE_SCHEMAS: Mapping[str, type[Schema]] = {
    "deals": DealsMessageSchema,
    "totals": TotalsSchema,
}

