"""Payloads of the /live namespace (what clients send and what the server sends them) and of
the halls API."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    pre_dump,
    validate,
    validates_schema,
)

from exhibitors.models import MediaKind, Project
from fair.accounts.schemas import Id, Text
from fair.money import YuanField, format_yuan
from fair.reference import PROVINCES
from fair.schemas import UtcDateTime
from livehalls.models import SanctionKind, Showcase

#: Totals are sums of many intents: only the pattern of an amount limits them, not one deal's cap.
_ANY_TOTAL = sys.maxsize


class ConnectAuthSchema(Schema):
    """The `auth` object of a connection; without a token the session cookie counts."""

    token = fields.String(load_default=None, validate=validate.Length(min=1, max=200))


class JoinDashboardSchema(Schema):
    fair_id = Id(required=True)


class HallSummarySchema(Schema):
    """A hall as the dashboard lists it."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)


class ProjectRefSchema(Schema):
    id = fields.Integer(required=True, strict=True)
    title = fields.String(required=True)


# Deals and totals: the one definition of their shapes. deals dumps intents and totals through
# these schemas, for the HTTP answers (GET /totals) and the /live messages alike, and the tests
# check every message against them; livehalls sends what deals dumped, untouched.


class DealEventSchema(Schema):
    """One intent as viewers see it: in a `deals` message and in the join acknowledgements."""

    id = fields.Integer(required=True, strict=True)
    hall_id = fields.Integer(required=True, strict=True, allow_none=True,
                             metadata={"description": "the hall it was signed from, if any"})
    project = fields.Nested(ProjectRefSchema, required=True)
    buyer_province = fields.String(required=True, validate=validate.OneOf(PROVINCES))
    amount = YuanField(required=True, attribute="amount_fen")
    created_at = UtcDateTime(required=True, format="iso")
    secured = fields.Boolean(required=True,
                             metadata={"description": "its deposit is paid (已付意向金)"})


class DealsMessageSchema(Schema):
    """The `deals` event: one or more new intents of a fair, oldest first."""

    fair_id = fields.Integer(required=True, strict=True)
    deals = fields.List(fields.Nested(DealEventSchema), required=True,
                        validate=validate.Length(min=1))


class SecuredMessageSchema(Schema):
    """The `secured` event: deposits were paid on these intents of the fair."""

    fair_id = fields.Integer(required=True, strict=True)
    deal_ids = fields.List(fields.Integer(strict=True), required=True,
                           validate=validate.Length(min=1))


class SeqMessageSchema(Schema):
    """The `seq` event: the fair's newest committed seq, every few seconds while watched."""

    fair_id = fields.Integer(required=True, strict=True)
    seq = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class BreakdownEntrySchema(Schema):
    """The intents of a fair under one key of a breakdown; a key without any is left out."""

    amount = YuanField(required=True, maximum_fen=_ANY_TOTAL)
    deal_count = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class Breakdown(fields.Dict):
    """A breakdown: key -> BreakdownEntrySchema. It dumps ``{key: (amount_fen, deal_count)}``
    itself, without a nested schema per entry: a totals message carries hundreds of entries,
    several times a second, and each would cost five times as much."""

    def __init__(self, description: str) -> None:
        super().__init__(keys=fields.String(), values=fields.Nested(BreakdownEntrySchema),
                         required=True, metadata={"description": description})

    def _serialize(self, value: Mapping[str, tuple[int, int]] | None, attr: str | None,
                   obj: Any, **kwargs: Any) -> dict[str, dict[str, Any]] | None:
        if value is None:
            return None
        return {key: {"amount": format_yuan(amount_fen), "deal_count": deal_count}
                for key, (amount_fen, deal_count) in value.items()}


def _count(description: str | None = None) -> fields.Integer:
    metadata = {"description": description} if description else {}
    return fields.Integer(required=True, strict=True, validate=validate.Range(min=0),
                          metadata=metadata)


class TotalsSchema(Schema):
    """A fair's totals: the body of GET /totals, and the `totals` message with its seq.

    Hall rooms get it without HALL_TOTALS_OMIT (``HallTotalsSchema``).
    """

    seq = _count("grows by one with every change")
    fair_id = fields.Integer(required=True, strict=True)
    amount = YuanField(required=True, attribute="amount_fen", allow_zero=True,
                       maximum_fen=_ANY_TOTAL)
    deal_count = _count()
    project_count = _count("projects with at least one active intent")
    buyer_count = _count("buyers with at least one active intent")
    secured_amount = YuanField(required=True, attribute="secured_amount_fen", allow_zero=True,
                               maximum_fen=_ANY_TOTAL,
                               metadata={"description": "active intents with a paid deposit"})
    secured_count = _count("active intents with a paid deposit")
    visits = _count("viewer visits (人次) of the fair's halls, as last saved (every few "
                    "seconds); the `viewers` event carries the live figure")
    by_buyer_province = Breakdown("province code of the buyer -> totals")
    by_exhibitor_province = Breakdown("province code of the exhibitor -> totals")
    by_category = Breakdown("category -> totals")
    by_hall = Breakdown("hall id -> totals of intents signed from that hall")
    by_exhibitor = Breakdown("exhibitor id -> totals")


#: What the totals sent to a hall's viewers leave out: a hall page never shows it, and at the
#: reference scale it is most of the message (317 exhibitors).
HALL_TOTALS_OMIT = ("by_exhibitor",)


class HallTotalsSchema(TotalsSchema):
    """The `totals` message of hall rooms and the `totals` of the join_hall acknowledgement."""

    class Meta:
        exclude = HALL_TOTALS_OMIT


# Halls, showcases and chat: the HTTP API and the hall events of /live.


def _stream_url(**options: Any) -> fields.String:
    return fields.String(
        validate=[validate.Length(max=500),
                  validate.Regexp(r"^(https?://\S+)?$", error=_l("请填写 http(s) 地址。"))],
        metadata={"description": "an HLS (.m3u8) address; empty plays the project's video"},
        **options,
    )


class HallInputSchema(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=100))
    stream_url = _stream_url(load_default="")
    auto_on_air = fields.Boolean(load_default=True, metadata={
        "description": "a showcase whose stream starts goes on air by itself"})
    grace_minutes = fields.Integer(load_default=10, strict=True,
                                   validate=validate.Range(min=0, max=240), metadata={
        "description": "minutes before and after its slot that a showcase may stream"})


class HallChangeSchema(Schema):
    """What an organiser changes of a hall: any of these."""

    name = Text(validate=validate.Length(min=1, max=100))
    stream_url = _stream_url()
    auto_on_air = fields.Boolean()
    grace_minutes = fields.Integer(strict=True, validate=validate.Range(min=0, max=240))
    position = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000),
                              metadata={"description": "its place in the fair's list of halls"})


def _first_media_url(project: Project, kind: MediaKind) -> str | None:
    return next((f"/media/{media.sha256}" for media in project.media if media.kind is kind), None)


class ShowcaseProjectSchema(Schema):
    """The project on a hall's card: enough to show it and to sign an intent for it."""

    id = fields.Integer(required=True, strict=True)
    title = fields.String(required=True)
    summary = fields.String(required=True)
    category = fields.String(required=True)
    province = fields.String(required=True)
    price = YuanField(required=True)
    organisation = fields.String(required=True)
    video_url = fields.String(required=True, allow_none=True,
                              metadata={"description": "the project's uploaded video, if any"})
    image_url = fields.String(required=True, allow_none=True)

    @pre_dump
    def from_project(self, project: Project, **kwargs: Any) -> dict[str, Any]:
        return {
            "id": project.id, "title": project.title, "summary": project.summary,
            "category": project.category, "province": project.province,
            "price": project.price_fen, "organisation": project.exhibitor.organisation.name,
            "video_url": _first_media_url(project, MediaKind.video),
            "image_url": _first_media_url(project, MediaKind.image),
        }


def live_url(showcase: Showcase) -> str | None:
    """The showcase's HLS on the fair's media server while it is streaming there."""
    base = current_app.config["STREAM_HLS_URL"]
    if not base or not showcase.is_streaming:
        return None
    return f"{base}/{showcase.stream_name}.m3u8"


def replay_url(showcase: Showcase) -> str | None:
    """Its recording (an MP4 served with ranges), unless there is none or it is hidden."""
    return f"/replays/{showcase.id}.mp4" if showcase.has_replay else None


class ShowcaseSchema(Schema):
    id = fields.Integer(required=True, strict=True)
    hall_id = fields.Integer(required=True, strict=True)
    project = fields.Nested(ShowcaseProjectSchema, required=True)
    starts_at = UtcDateTime(required=True, format="iso")
    ends_at = UtcDateTime(required=True, format="iso")
    live_url = fields.String(allow_none=True, metadata={
        "description": "its HLS (.m3u8) while an encoder streams it through the media server"})
    replay_url = fields.String(allow_none=True, metadata={
        "description": "its replay (回放), an MP4, once its stream was recorded"})
    replay_duration_ms = fields.Integer(allow_none=True)

    @pre_dump
    def from_showcase(self, showcase: Showcase, **kwargs: Any) -> dict[str, Any]:
        return {
            "id": showcase.id, "hall_id": showcase.hall_id, "project": showcase.project,
            "starts_at": showcase.starts_at, "ends_at": showcase.ends_at,
            "live_url": live_url(showcase), "replay_url": replay_url(showcase),
            "replay_duration_ms": showcase.replay_duration_ms if showcase.has_replay else None,
        }


class ShowcaseInputSchema(Schema):
    project_id = Id(required=True)
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)

    @validates_schema
    def check_slot(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError(_l("展播结束时间必须晚于开始时间。"), "ends_at")


class ShowcaseMoveSchema(ShowcaseInputSchema):
    """A showcase moved to another slot, and perhaps another hall of the fair."""

    project_id = Id()
    hall_id = Id()


class ReplayInputSchema(Schema):
    hidden = fields.Boolean(required=True, metadata={"description": "hide the replay (回放)"})


class PushDetailsSchema(Schema):
    """A showcase's push details, for OBS or any RTMP encoder (a secret: handle with care)."""

    showcase_id = fields.Integer(required=True)
    server = fields.String(required=True, metadata={
        "description": "rtmp://host:1935/live, empty when the fair has no media server"})
    stream_key = fields.String(required=True, metadata={"description": "OBS's stream key"})
    url = fields.String(required=True, metadata={"description": "server and key as one URL"})
    expires_at = UtcDateTime(required=True, format="iso")
    hls_url = fields.String(allow_none=True)


class PushAttemptSchema(Schema):
    id = fields.Integer(required=True)
    showcase_id = fields.Integer(allow_none=True)
    stream_name = fields.String(required=True)
    accepted = fields.Boolean(required=True)
    reason = fields.String(required=True, metadata={"description": "why it was refused"})
    addr = fields.String(required=True)
    at = UtcDateTime(required=True, attribute="created_at", format="iso")


class StreamHookSchema(Schema):
    """What nginx-rtmp posts to on_publish, on_publish_done and on_record_done (form-encoded,
    with the query of the push URL added); what else it sends is ignored."""

    class Meta:
        unknown = EXCLUDE

    name = fields.String(required=True, validate=validate.Length(max=200))
    addr = fields.String(load_default="", validate=validate.Length(max=200))
    clientid = fields.String(load_default="", validate=validate.Length(max=40))
    e = fields.String(load_default="", validate=validate.Length(max=40),
                      metadata={"description": "the push URL's expiry"})
    s = fields.String(load_default="", validate=validate.Length(max=200),
                      metadata={"description": "the push URL's signature"})
    path = fields.String(load_default="", validate=validate.Length(max=1000),
                         metadata={"description": "on_record_done: the recorded file"})


class OnAirInputSchema(Schema):
    showcase_id = Id(required=True, allow_none=True,
                     metadata={"description": "null takes the hall off air"})


class FiguresSchema(Schema):
    viewers = fields.Integer()
    visits = fields.Integer()
    peak_viewers = fields.Integer()


class HallSchema(Schema):
    """A hall with what is on air and its viewer figures (a ``service.HallView``)."""

    id = fields.Integer(attribute="hall.id")
    fair_id = fields.Integer(attribute="hall.fair_id")
    name = fields.String(attribute="hall.name")
    stream_url = fields.String(attribute="hall.stream_url")
    position = fields.Integer(attribute="hall.position")
    auto_on_air = fields.Boolean(attribute="hall.auto_on_air")
    grace_minutes = fields.Integer(attribute="hall.grace_minutes")
    on_air = fields.Nested(ShowcaseSchema, attribute="hall.on_air", allow_none=True)
    viewers = fields.Integer(attribute="figures.viewers")
    visits = fields.Integer(attribute="figures.visits")
    peak_viewers = fields.Integer(attribute="figures.peak_viewers")
    fair = fields.Nested(FiguresSchema, attribute="fair_figures",
                         metadata={"description": "the whole fair's viewer figures"})


class ChatUserSchema(Schema):
    id = fields.Integer(required=True, strict=True)
    name = fields.String(required=True)


class ChatMessageEventSchema(Schema):
    """The `chat` event, and each line of `chat` in the join_hall acknowledgement."""

    hall_id = fields.Integer(required=True, strict=True)
    id = fields.Integer(required=True, strict=True)
    user = fields.Nested(ChatUserSchema, required=True)
    text = fields.String(required=True, validate=validate.Length(min=1, max=300))
    at = UtcDateTime(required=True, attribute="created_at", format="iso")


class ChatLineSchema(ChatMessageEventSchema):
    """A chat line as the moderation API answers: with when it was hidden, if it was."""

    hidden_at = UtcDateTime(allow_none=True, format="iso")


class ChatSanctionInputSchema(Schema):
    user_id = Id(required=True)
    kind = fields.Enum(SanctionKind, by_value=True, required=True, metadata={
        "description": "mute: no more chatting; ban: as mute, and the user's lines are hidden"})


class ChatSanctionSchema(Schema):
    """A mute or ban of one user in a hall's chat."""

    hall_id = fields.Integer(required=True)
    user = fields.Nested(ChatUserSchema, required=True)
    kind = fields.Enum(SanctionKind, by_value=True, required=True)
    at = UtcDateTime(required=True, attribute="created_at", format="iso")


class ChatHiddenMessageSchema(Schema):
    """The `chat_hidden` event: an organiser hid the line `id` from everyone."""

    hall_id = fields.Integer(required=True, strict=True)
    id = fields.Integer(required=True, strict=True)


class UnreadMessageSchema(Schema):
    """The `unread` event, to one user's sockets: how many of its notifications are unread."""

    unread = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class OnAirMessageSchema(Schema):
    """The `on_air` event: the hall's showcase now, or null."""

    hall_id = fields.Integer(required=True, strict=True)
    showcase = fields.Nested(ShowcaseSchema, required=True, allow_none=True)


class ViewersFiguresSchema(Schema):
    viewers = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    visits = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    peak_viewers = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class ViewersMessageSchema(ViewersFiguresSchema):
    """The `viewers` event: a hall's figures, and its fair's under `fair`."""

    hall_id = fields.Integer(required=True, strict=True)
    fair_id = fields.Integer(required=True, strict=True)
    fair = fields.Nested(ViewersFiguresSchema, required=True)


class JoinHallSchema(Schema):
    hall_id = Id(required=True)


class LeaveHallSchema(Schema):
    hall_id = Id(required=True)


class ChatInputSchema(Schema):
    hall_id = Id(required=True)
    # The length rule lives in the service, which counts after trimming.
    text = fields.String(required=True, validate=validate.Length(max=2000))


class QueueHealthSchema(Schema):
    kind = fields.String(metadata={"description": "redis, or none without REDIS_URL"})
    channel = fields.String(allow_none=True)
    subscribed = fields.Boolean(allow_none=True, metadata={
        "description": "Redis lists this process's listener as subscribed to the channel"})
    subscribers = fields.Integer(allow_none=True, metadata={
        "description": "PUBSUB NUMSUB: at least one per server process when healthy"})
    processes = fields.Integer(allow_none=True, metadata={
        "description": "server processes with viewers, each of which must be subscribed"})


class HealthSchema(Schema):
    ok = fields.Boolean()
    database = fields.String()
    redis = fields.String(metadata={"description": "ok, off (no REDIS_URL) or the error"})
    queue = fields.Nested(QueueHealthSchema)


#: The schema of every server-to-client event that livehalls.broadcast sends; hall rooms get
#: `totals` as HALL_MESSAGE_SCHEMAS says. The tests load every message they cause with these,
#: and unknown fields are refused (marshmallow's default), so a payload that drifts from
#: docs/socketio.md fails its tests instead of reaching a browser.
MESSAGE_SCHEMAS: Mapping[str, type[Schema]] = {
    "deals": DealsMessageSchema,
    "secured": SecuredMessageSchema,
    "seq": SeqMessageSchema,
    "totals": TotalsSchema,
    "viewers": ViewersMessageSchema,
    "on_air": OnAirMessageSchema,
    "chat": ChatMessageEventSchema,
    "chat_hidden": ChatHiddenMessageSchema,
    "unread": UnreadMessageSchema,
}
#: What a hall room's viewers get: the same, but `totals` without HALL_TOTALS_OMIT.
HALL_MESSAGE_SCHEMAS: Mapping[str, type[Schema]] = {**MESSAGE_SCHEMAS, "totals": HallTotalsSchema}
