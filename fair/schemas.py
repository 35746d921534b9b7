"""Fair payloads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, fields, validate, validates_schema

from fair.accounts.schemas import StrictSchema, Text
from fair.database import as_utc
from fair.models import FairStatus
from fair.money import MAX_CHARGE_FEN, YuanField

#: The fair's payment settings, as the API names and describes them.
BOOTH_FEE = {"data_key": "booth_fee",
             "metadata": {"description": "what an approved exhibitor pays; \"0.00\" for none"}}
DEPOSIT_PERCENT = {"metadata": {"description": "a buyer's deposit on an intent, in percent"}}
BOOTH_FEE_REQUIRED = {
    "metadata": {"description": "exhibitors must pay the booth fee before publishing"}
}
MAX_INTENT = {"data_key": "max_intent", "allow_none": True,
              "metadata": {"description": "the most one intent may be worth at this fair; "
                                          "null for the general limit, 100000000.00"}}


class UtcDateTime(fields.AwareDateTime):
    """Dumps with the UTC offset even where SQLite handed back a naive (UTC) datetime."""

    def _serialize(self, value: dt.datetime | None, attr: str | None, obj: Any,
                   **kwargs: Any) -> str | None:
        return None if value is None else super()._serialize(as_utc(value), attr, obj, **kwargs)


class FairSchema(StrictSchema):
    id = fields.Int(dump_only=True)
    name = Text(required=True, validate=validate.Length(min=2, max=200))
    starts_at = UtcDateTime(required=True)
    ends_at = UtcDateTime(required=True)
    status = fields.Enum(FairStatus, by_value=True, dump_only=True)
    booth_fee_fen = YuanField(dump_only=True, allow_zero=True, maximum_fen=MAX_CHARGE_FEN,
                              **BOOTH_FEE)
    deposit_percent = fields.Int(dump_only=True, **DEPOSIT_PERCENT)
    booth_fee_required = fields.Bool(dump_only=True, **BOOTH_FEE_REQUIRED)
    max_intent_fen = YuanField(dump_only=True, **MAX_INTENT)

    @validates_schema
    def check_dates(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "starts_at" in data and "ends_at" in data and data["ends_at"] <= data["starts_at"]:
            raise ValidationError(_l("闭幕时间必须晚于开幕时间。"), "ends_at")


class FairUpdateSchema(StrictSchema):
    name = Text(validate=validate.Length(min=2, max=200))
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    status = fields.Enum(FairStatus, by_value=True)
    booth_fee_fen = YuanField(allow_zero=True, maximum_fen=MAX_CHARGE_FEN, **BOOTH_FEE)
    deposit_percent = fields.Int(strict=True, validate=validate.Range(min=1, max=100),
                                 **DEPOSIT_PERCENT)
    booth_fee_required = fields.Bool(**BOOTH_FEE_REQUIRED)
    max_intent_fen = YuanField(**MAX_INTENT)
