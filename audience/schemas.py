"""The audience API's bodies: the beacon's batch and answer, favourites, share links."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from audience.service import MAX_BATCH
from exhibitors.schemas import ProjectSchema


class BeaconSchema(Schema):
    """`{events: [{kind, fair_id, object_type?, object_id?, at?, seconds?}]}`: each event is
    checked on its own (audience.service.check_beacon), the batch's shape here."""

    class Meta:
        unknown = EXCLUDE

    # Raw, not Dict: each event is checked once, by check_beacon (a list that holds anything
    # but objects is malformed there), instead of once here and again there.
    events = fields.List(
        fields.Raw(), required=True,
        validate=validate.Length(max=MAX_BATCH, error=f"At most {MAX_BATCH} events a batch."),
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
