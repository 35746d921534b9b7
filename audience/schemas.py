"""The audience API's bodies: the beacon's batch and answer, favourites, share links."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, fields, utils, validate

from audience.service import MAX_BATCH
from exhibitors.schemas import ProjectSchema


class _Events(fields.List):
    """A list taken as it came: each event is checked once, by check_beacon (a list that holds
    anything but objects is malformed there), not once here as a field and again there."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not utils.is_collection(value):
            raise self.make_error("invalid")
        return list(value)


class BeaconSchema(Schema):
    """`{events: [{kind, fair_id, object_type?, object_id?, at?, seconds?}]}`: each event is
    checked on its own (audience.service.check_beacon), the batch's shape here."""

    class Meta:
        unknown = EXCLUDE

    events = _Events(
        fields.Raw(), required=True,
        validate=validate.Length(max=MAX_BATCH,
                                 error=_l("每批最多 %(count)s 个事件。", count=MAX_BATCH)),
        metadata={"description": "kind (impression, watch, share), fair_id, object_type "
                                 "(project, hall, showcase), object_id, at (ISO 8601 with an "
                                 "offset), seconds (watch)"})


class RefusalSchema(Schema):
    index = fields.Int()
    error = fields.Str()


class BeaconAnswerSchema(Schema):
    accepted = fields.Int()
    refused = fields.List(fields.Nested(RefusalSchema))
    #: False when the browser asked not to be tracked (DNT, GPC): nothing was written.
    recording = fields.Bool()


class FavouritesSchema(Schema):
    items = fields.List(fields.Nested(ProjectSchema))


class ShareSchema(Schema):
    code = fields.Str()
    project_id = fields.Int()
    visits = fields.Int()
    url = fields.Str()
