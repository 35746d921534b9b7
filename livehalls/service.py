"""Live-hall use cases: halls, the showcase schedule, on-air control, chat, who may watch what."""

from __future__ import annotations

import datetime as dt
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from exhibitors.models import Project
from fair import permissions
from fair import service as fair_service
from fair.accounts.models import User
from fair.database import as_utc, use_case, utcnow
from fair.errors import Conflict, FairError, InvalidInput, NotFound
from fair.extensions import db
from fair.models import Fair
from livehalls import broadcast, presence, schemas
from livehalls.models import ChatMessage, Hall, Showcase

#: The longest chat line, in characters.
MAX_CHAT_LENGTH = 300
#: A user may post at most CHAT_BURST lines in any CHAT_PERIOD, across all halls.
CHAT_BURST = 5
CHAT_PERIOD = dt.timedelta(seconds=10)
#: How many lines a viewer gets on joining a hall.
CHAT_HISTORY = 50
#: How long a process reuses a hall's snapshot for the viewers joining it.
SNAPSHOT_SECONDS = 1.0
SNAPSHOTS_KEY = "fair.hall_snapshots"


class ChatTooFast(FairError):
    status = 429
    code = "too_fast"
    message = _l("发言太快了，请稍等几秒。")


@dataclass(frozen=True)
class HallView:
    """A hall with its viewer figures and its fair's, as the API and join_hall show it."""

    hall: Hall
    figures: presence.Figures
    fair_figures: presence.Figures


def access_dashboard(user: User | None, fair_id: int) -> Fair:
    """The fair whose dashboard an organiser opens."""
    permissions.require_organiser(user)
    return fair_service.access_fair(fair_id)


def access_hall(hall_id: int) -> Hall:
    """A hall; anyone may watch one, signed in or not."""
    hall = db.session.get(Hall, hall_id)
    if hall is None:
        raise NotFound(_l("没有这个直播厅。"))
    return hall


def access_chat_message(message_id: int) -> ChatMessage:
    message = db.session.get(ChatMessage, message_id)
    if message is None:
        raise NotFound(_l("没有这条聊天消息。"))
    return message


def list_halls(fair: Fair) -> Sequence[Hall]:
    return db.session.scalars(select(Hall).where(Hall.fair_id == fair.id).order_by(Hall.id)).all()


def count_halls(fair: Fair) -> int:
    """How many live halls the fair has."""
    return db.session.scalar(
        select(func.count()).select_from(Hall).where(Hall.fair_id == fair.id)
    ) or 0


@dataclass(frozen=True)
class ProgrammeItem:
    """A hall and what it shows now, or next when nothing is on air (None: nothing planned)."""

    hall_id: int
    hall_name: str
    project_id: int | None
    project_title: str
    project_title_en: str
    on_air: bool
    starts_at: dt.datetime | None


def programme(fair: Fair) -> list[ProgrammeItem]:
    """Each hall of the fair with its showcase on air, or its next one, for the home page."""
    now = utcnow()
    items = []
    for hall in list_halls(fair):
        showcase = hall.on_air
        if showcase is None:
            showcase = db.session.scalars(
                select(Showcase).where(Showcase.hall_id == hall.id, Showcase.starts_at >= now)
                .order_by(Showcase.starts_at).limit(1)
            ).first()
        project = None if showcase is None else showcase.project
        items.append(ProgrammeItem(
            hall_id=hall.id, hall_name=hall.name,
            project_id=None if project is None else project.id,
            project_title="" if project is None else project.title,
            project_title_en="" if project is None else project.title_en,
            on_air=hall.on_air is not None,
            starts_at=None if showcase is None or hall.on_air is not None else showcase.starts_at,
        ))
    return items


def view_hall(hall: Hall) -> HallView:
    """The hall, what is on air and the viewer figures across every server process."""
    hall_figures, fair_figures = presence.current().figures(hall.id, hall.fair_id)
    return HallView(hall, hall_figures, fair_figures)


@dataclass(frozen=True)
class HallSnapshot:
    """What a joining viewer is sent about a hall: the hall as dumped, and its last chat."""

    hall_id: int
    fair_id: int
    on_air_id: int | None
    payload: dict[str, Any]
    chat: list[dict[str, Any]]


def hall_snapshot(hall_id: int) -> HallSnapshot:
    """The hall and its chat for a joining viewer, shared by those joining within a second.

    One cheap query checks what is on air, so a viewer never joins with a stale card; a chat
    line posted in another process during that second may be missing from the history (this
    process forgets its snapshot whenever its own use cases change the hall).
    """
    on_air_id = db.session.execute(
        select(Hall.on_air_showcase_id).where(Hall.id == hall_id)
    ).first()
    if on_air_id is None:
        raise NotFound(_l("没有这个直播厅。"))
    snapshots: dict[int, tuple[float, HallSnapshot]] = current_app.extensions.setdefault(
        SNAPSHOTS_KEY, {})
    cached = snapshots.get(hall_id)
    now = time.monotonic()
    if cached is not None and now < cached[0] and cached[1].on_air_id == on_air_id[0]:
        return cached[1]
    hall = access_hall(hall_id)
    snapshot = HallSnapshot(
        hall_id=hall.id,
        fair_id=hall.fair_id,
        on_air_id=hall.on_air_showcase_id,
        payload=schemas.HallSchema(exclude=_FIGURES).dump(HallView(hall, _NONE, _NONE)),
        chat=schemas.ChatMessageEventSchema(many=True).dump(recent_chat(hall)),
    )
    snapshots[hall_id] = (now + SNAPSHOT_SECONDS, snapshot)
    return snapshot


def _forget_snapshot(hall_id: int) -> None:
    current_app.extensions.get(SNAPSHOTS_KEY, {}).pop(hall_id, None)


def list_showcases(hall: Hall) -> Sequence[Showcase]:
    """The hall's schedule, in time order."""
    return db.session.scalars(
        select(Showcase).where(Showcase.hall_id == hall.id).order_by(Showcase.starts_at)
    ).all()


def recent_chat(hall: Hall, *, limit: int = CHAT_HISTORY) -> list[ChatMessage]:
    """The hall's last visible chat lines, oldest first."""
    newest_first = db.session.scalars(
        select(ChatMessage)
        .where(ChatMessage.hall_id == hall.id, ChatMessage.hidden_at.is_(None))
        .order_by(ChatMessage.id.desc())
        .limit(limit)
    ).all()
    return list(reversed(newest_first))


@use_case()
def create_hall(fair: Fair, *, organiser: User | None, name: str, stream_url: str = "") -> Hall:
    """Open a live hall in a fair."""
    permissions.require_hall_manager(organiser)
    name = name.strip()
    if not name:
        raise InvalidInput(fields={"name": [_l("请填写直播厅名称。")]})
    hall = Hall(fair_id=fair.id, name=name, stream_url=stream_url.strip())
    db.session.add(hall)
    db.session.flush()
    return hall


@use_case()
def schedule_showcase(hall: Hall, *, organiser: User | None, project_id: int,
                      starts_at: dt.datetime, ends_at: dt.datetime) -> Showcase:
    """Put a published project of the hall's fair into a free time slot of the hall."""
    permissions.require_hall_manager(organiser)
    # SQLite keeps no offset: every slot is stored, and compared, in UTC.
    starts_at, ends_at = as_utc(starts_at).astimezone(dt.UTC), as_utc(ends_at).astimezone(dt.UTC)
    if ends_at <= starts_at:
        raise InvalidInput(fields={"ends_at": [_l("展播结束时间必须晚于开始时间。")]})
    project = db.session.get(Project, project_id)
    if project is None or project.fair_id != hall.fair_id:
        raise InvalidInput(fields={"project_id": [_l("本届大会没有这个项目。")]})
    if not project.is_published:
        raise Conflict(_l("只有已发布的项目可以安排展播。"),
                       code="project_not_published")
    # Two slots overlap when each starts before the other ends; touching slots are fine.
    clash = db.session.scalar(
        select(Showcase).where(
            Showcase.hall_id == hall.id,
            Showcase.starts_at < ends_at,
            Showcase.ends_at > starts_at,
        ).limit(1)
    )
    if clash is not None:
        raise _slot_taken(clash)
    showcase = Showcase(hall_id=hall.id, project=project, starts_at=starts_at, ends_at=ends_at)
    db.session.add(showcase)
    try:
        db.session.flush()
    except IntegrityError as error:
        # PostgreSQL's exclusion constraint caught a slot scheduled at the same moment.
        raise Conflict(_l("这个时段刚刚被安排了另一场展播。"),
                       code="slot_taken") from error
    return showcase


@use_case()
def put_on_air(hall: Hall, *, organiser: User | None, showcase_id: int | None) -> Hall:
    """Stream one of the hall's showcases now, or nothing (None); viewers hear it at once."""
    permissions.require_hall_manager(organiser)
    if showcase_id is None:
        hall.on_air = None
    else:
        showcase = db.session.get(Showcase, showcase_id)
        if showcase is None or showcase.hall_id != hall.id:
            raise InvalidInput(fields={"showcase_id": [_l("这个直播厅没有这场展播。")]})
        hall.on_air = showcase
    db.session.flush()
    _forget_snapshot(hall.id)
    broadcast.on_air_changed(
        hall.id,
        showcase=None if hall.on_air is None else schemas.ShowcaseSchema().dump(hall.on_air),
    )
    return hall


@use_case()
def post_chat(hall: Hall, *, user: User | None, text: str) -> ChatMessage:
    """Say something in a hall's chat: plain text, short, a few lines at a time."""
    user = permissions.require_chatter(user)
    text = _clean_chat(text)
    now = utcnow()
    recent = db.session.scalar(
        select(func.count()).select_from(ChatMessage).where(
            ChatMessage.user_id == user.id, ChatMessage.created_at > now - CHAT_PERIOD
        )
    ) or 0
    if recent >= CHAT_BURST:
        raise ChatTooFast()
    message = ChatMessage(hall_id=hall.id, user=user, text=text, created_at=now)
    db.session.add(message)
    db.session.flush()
    _forget_snapshot(hall.id)
    broadcast.chat_posted(schemas.ChatMessageEventSchema().dump(message))
    return message


@use_case()
def hide_chat(message: ChatMessage, *, organiser: User | None) -> ChatMessage:
    """Hide a chat line from everyone; hiding it again changes nothing."""
    organiser = permissions.require_chat_moderator(organiser)
    if message.hidden_at is None:
        message.hidden_at = utcnow()
        message.hidden_by_id = organiser.id
        _forget_snapshot(message.hall_id)
        broadcast.chat_hidden(message.hall_id, message_id=message.id)
    return message


_FIGURES = ("viewers", "visits", "peak_viewers", "fair")
_NONE = presence.Figures(0, 0, 0)


def _clean_chat(text: str) -> str:
    """Keep printable text on one line; refuse an empty or overlong line."""
    if not isinstance(text, str):
        raise InvalidInput(fields={"text": [_l("请发送文字。")]})
    # Control characters (new lines included) would let one line pose as several.
    text = "".join(" " if unicodedata.category(char).startswith("C") else char for char in text)
    text = " ".join(text.split())
    if not text:
        raise InvalidInput(fields={"text": [_l("请先输入内容。")]})
    if len(text) > MAX_CHAT_LENGTH:
        raise InvalidInput(code="too_long",
                           fields={"text": [_l("最多 %(count)d 个字。", count=MAX_CHAT_LENGTH)]})
    return text


def _slot_taken(clash: Showcase) -> Conflict:
    return Conflict(
        _l("这个时段与本厅另一场展播重叠（%(starts)s 至 %(ends)s）。",
           starts=as_utc(clash.starts_at).isoformat(), ends=as_utc(clash.ends_at).isoformat()),
        code="slot_taken",
    )
