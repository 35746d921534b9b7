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
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from exhibitors.models import Exhibitor, Project, ProjectStatus
from fair import permissions
from fair import service as fair_service
from fair.accounts.models import Organisation, Role, User
from fair.database import as_utc, use_case, utcnow
from fair.errors import Conflict, FairError, Forbidden, InvalidInput, NotFound
from fair.extensions import db
from fair.models import Fair, FairStatus
from livehalls import broadcast, presence, schemas
from livehalls.models import ChatMessage, ChatSanction, Hall, SanctionKind, Showcase

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
    return db.session.scalars(
        select(Hall).where(Hall.fair_id == fair.id).order_by(Hall.position, Hall.id)
    ).all()


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


def list_showcases(hall: Hall, *, starting: dt.datetime | None = None,
                   before: dt.datetime | None = None) -> Sequence[Showcase]:
    """The hall's schedule in time order; or the showcases starting in [starting, before)."""
    query = select(Showcase).where(Showcase.hall_id == hall.id)
    if starting is not None:
        query = query.where(Showcase.starts_at >= starting)
    if before is not None:
        query = query.where(Showcase.starts_at < before)
    return db.session.scalars(query.order_by(Showcase.starts_at)).all()


def showcase_candidates(fair: Fair) -> Sequence[tuple[int, str, str]]:
    """What an organiser may schedule: the fair's published projects (id, title, exhibitor)."""
    rows = db.session.execute(
        select(Project.id, Project.title, Organisation.name)
        .join(Exhibitor, Exhibitor.id == Project.exhibitor_id)
        .join(Organisation, Organisation.id == Exhibitor.organisation_id)
        .where(Project.fair_id == fair.id, Project.status == ProjectStatus.published)
        .order_by(Project.title, Project.id)
    ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def exhibitor_showcases(user: User | None, fair: Fair, *, since: dt.datetime
                        ) -> Sequence[Showcase]:
    """The showcases of the user's own projects in the fair that end after `since`."""
    user = permissions.require_role(user, Role.exhibitor)
    return db.session.scalars(
        select(Showcase).join(Project, Project.id == Showcase.project_id)
        .join(Exhibitor, Exhibitor.id == Project.exhibitor_id)
        .where(Project.fair_id == fair.id, Exhibitor.organisation_id == user.organisation_id,
               Showcase.ends_at > since)
        .order_by(Showcase.starts_at)
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
def create_hall(fair: Fair, *, organiser: User | None, name: str, stream_url: str = "",
                auto_on_air: bool = True, grace_minutes: int = 10) -> Hall:
    """Open a live hall in a fair, last in its list."""
    permissions.require_hall_manager(organiser)
    last = db.session.scalar(select(func.max(Hall.position)).where(Hall.fair_id == fair.id))
    hall = Hall(fair_id=fair.id, name=_hall_name(name), stream_url=stream_url.strip(),
                auto_on_air=auto_on_air, grace_minutes=grace_minutes,
                position=0 if last is None else last + 1)
    db.session.add(hall)
    db.session.flush()
    return hall


@use_case()
def change_hall(hall: Hall, *, organiser: User | None, name: str | None = None,
                stream_url: str | None = None, auto_on_air: bool | None = None,
                grace_minutes: int | None = None, position: int | None = None) -> Hall:
    """Rename a hall, move it in the fair's list, or change how its showcases stream."""
    permissions.require_hall_manager(organiser)
    if name is not None:
        hall.name = _hall_name(name)
    if stream_url is not None:
        hall.stream_url = stream_url.strip()
    if auto_on_air is not None:
        hall.auto_on_air = auto_on_air
    if grace_minutes is not None:
        hall.grace_minutes = grace_minutes
    if position is not None:
        _move_hall(hall, position)
    db.session.flush()
    _forget_snapshot(hall.id)
    return hall


def _move_hall(hall: Hall, position: int) -> None:
    """Put the hall at `position` (0 first) of its fair's list and number the others around it."""
    others = [h for h in db.session.scalars(
        select(Hall).where(Hall.fair_id == hall.fair_id).order_by(Hall.position, Hall.id)
    ) if h.id != hall.id]
    others.insert(min(position, len(others)), hall)
    for index, each in enumerate(others):
        each.position = index


def _hall_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput(fields={"name": [_l("请填写直播厅名称。")]})
    return name


@use_case()
def schedule_showcase(hall: Hall, *, organiser: User | None, project_id: int,
                      starts_at: dt.datetime, ends_at: dt.datetime) -> Showcase:
    """Put a published project of the hall's fair into a free time slot of the hall."""
    permissions.require_hall_manager(organiser)
    starts_at, ends_at = _slot(starts_at, ends_at)
    project = db.session.get(Project, project_id)
    if project is None or project.fair_id != hall.fair_id:
        raise InvalidInput(fields={"project_id": [_l("本届大会没有这个项目。")]})
    if not project.is_published:
        raise Conflict(_l("只有已发布的项目可以安排展播。"),
                       code="project_not_published")
    _refuse_overlap(hall.id, starts_at, ends_at)
    showcase = Showcase(hall_id=hall.id, project=project, starts_at=starts_at, ends_at=ends_at)
    db.session.add(showcase)
    _flush_slot()
    return showcase


@use_case()
def move_showcase(showcase: Showcase, *, organiser: User | None, starts_at: dt.datetime,
                  ends_at: dt.datetime, hall_id: int | None = None) -> Showcase:
    """Move a showcase to another free slot, of its hall or of another hall of the fair."""
    permissions.require_hall_manager(organiser)
    starts_at, ends_at = _slot(starts_at, ends_at)
    hall = access_hall(showcase.hall_id)
    target = hall if hall_id is None else db.session.get(Hall, hall_id)
    if target is None or target.fair_id != hall.fair_id:
        raise InvalidInput(fields={"hall_id": [_l("本届大会没有这个直播厅。")]})
    if target.id != hall.id and hall.on_air_showcase_id == showcase.id:
        raise Conflict(_l("请先让这场展播下播，再把它移到另一个直播厅。"),
                       code="on_air")
    _refuse_overlap(target.id, starts_at, ends_at, besides=showcase.id)
    showcase.hall_id, showcase.starts_at, showcase.ends_at = target.id, starts_at, ends_at
    _flush_slot()
    _forget_snapshot(hall.id)
    return showcase


@use_case()
def cancel_showcase(showcase: Showcase, *, organiser: User | None) -> None:
    """Take a showcase off the schedule; one on air, streaming or with a replay stays."""
    permissions.require_hall_manager(organiser)
    hall = access_hall(showcase.hall_id)
    if hall.on_air_showcase_id == showcase.id or showcase.is_streaming:
        raise Conflict(_l("这场展播正在直播，请先下播。"), code="on_air")
    if showcase.replay_sha256 is not None:
        raise Conflict(_l("这场展播已经直播过并有回放，请改为隐藏回放。"),
                       code="has_replay")
    db.session.delete(showcase)
    _forget_snapshot(hall.id)


def access_showcase(showcase_id: int) -> Showcase:
    showcase = db.session.get(Showcase, showcase_id)
    if showcase is None:
        raise NotFound(_l("没有这场展播。"))
    return showcase


def _slot(starts_at: dt.datetime, ends_at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    # SQLite keeps no offset: every slot is stored, and compared, in UTC.
    starts_at, ends_at = as_utc(starts_at).astimezone(dt.UTC), as_utc(ends_at).astimezone(dt.UTC)
    if ends_at <= starts_at:
        raise InvalidInput(fields={"ends_at": [_l("展播结束时间必须晚于开始时间。")]})
    return starts_at, ends_at


def _refuse_overlap(hall_id: int, starts_at: dt.datetime, ends_at: dt.datetime, *,
                    besides: int | None = None) -> None:
    """The one overlap rule: two slots of a hall overlap when each starts before the other
    ends; touching slots are fine."""
    query = select(Showcase).where(
        Showcase.hall_id == hall_id, Showcase.starts_at < ends_at, Showcase.ends_at > starts_at,
    )
    if besides is not None:
        query = query.where(Showcase.id != besides)
    clash = db.session.scalar(query.limit(1))
    if clash is not None:
        raise _slot_taken(clash)


def _flush_slot() -> None:
    try:
        db.session.flush()
    except IntegrityError as error:
        # PostgreSQL's exclusion constraint caught a slot scheduled at the same moment.
        raise Conflict(_l("这个时段刚刚被安排了另一场展播。"),
                       code="slot_taken") from error


@use_case()
def put_on_air(hall: Hall, *, organiser: User | None, showcase_id: int | None) -> Hall:
    """Stream one of the hall's showcases now, or nothing (None); viewers hear it at once."""
    permissions.require_hall_manager(organiser)
    showcase = None
    if showcase_id is not None:
        showcase = db.session.get(Showcase, showcase_id)
        if showcase is None or showcase.hall_id != hall.id:
            raise InvalidInput(fields={"showcase_id": [_l("这个直播厅没有这场展播。")]})
    return set_on_air(hall, showcase)


def set_on_air(hall: Hall, showcase: Showcase | None) -> Hall:
    """Put the showcase (or nothing) on air and tell the hall's viewers after the commit."""
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
    fair = db.session.get(Fair, hall.fair_id)
    if fair is None or fair.status is FairStatus.closed:
        raise Conflict(_l("本届大会已闭幕，直播厅的聊天已结束。"), code="fair_closed")
    _refuse_sanctioned(hall, user)
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


@use_case()
def show_chat(message: ChatMessage, *, organiser: User | None) -> ChatMessage:
    """Undo hiding a chat line: everyone sees it again, in its place; a visible line stays."""
    permissions.require_chat_moderator(organiser)
    if message.hidden_at is not None:
        message.hidden_at = None
        message.hidden_by_id = None
        db.session.flush()
        _forget_snapshot(message.hall_id)
        broadcast.chat_posted(schemas.ChatMessageEventSchema().dump(message))
    return message


def _refuse_sanctioned(hall: Hall, user: User) -> None:
    sanction = db.session.scalar(select(ChatSanction.kind).where(
        ChatSanction.hall_id == hall.id, ChatSanction.user_id == user.id))
    if sanction is SanctionKind.mute:
        raise Forbidden(_l("你已被主办方禁言，暂时不能在本厅发言。"), code="muted")
    if sanction is SanctionKind.ban:
        raise Forbidden(_l("你已被主办方移出本厅聊天，不能在本厅发言。"), code="banned")


def list_sanctions(hall: Hall, *, organiser: User | None) -> Sequence[ChatSanction]:
    """Who is muted or banned in the hall's chat, newest first."""
    permissions.require_chat_moderator(organiser)
    return db.session.scalars(select(ChatSanction).where(ChatSanction.hall_id == hall.id)
                              .order_by(ChatSanction.id.desc())).all()


@use_case()
def sanction_chatter(hall: Hall, *, organiser: User | None, user_id: int,
                     kind: SanctionKind) -> ChatSanction:
    """Mute a user in the hall's chat, or ban them: a ban also hides their lines there.
    Giving a user another sanction replaces the one they had."""
    organiser = permissions.require_chat_moderator(organiser)
    user = db.session.get(User, user_id)
    if user is None:
        raise InvalidInput(fields={"user_id": [_l("没有这个用户。")]})
    if user.role is Role.organiser:
        raise InvalidInput(fields={"user_id": [_l("不能禁言主办方。")]})
    sanction = db.session.scalar(select(ChatSanction).where(
        ChatSanction.hall_id == hall.id, ChatSanction.user_id == user.id))
    if sanction is None:
        sanction = ChatSanction(hall_id=hall.id, user=user, kind=kind, by_id=organiser.id)
        db.session.add(sanction)
    else:
        sanction.kind, sanction.by_id = kind, organiser.id
    if kind is SanctionKind.ban:
        hidden = db.session.scalars(
            update(ChatMessage)
            .where(ChatMessage.hall_id == hall.id, ChatMessage.user_id == user.id,
                   ChatMessage.hidden_at.is_(None))
            .values(hidden_at=utcnow(), hidden_by_id=organiser.id)
            .returning(ChatMessage.id)
        ).all()
        for message_id in hidden:
            broadcast.chat_hidden(hall.id, message_id=message_id)
        if hidden:
            _forget_snapshot(hall.id)
    try:
        db.session.flush()
    except IntegrityError as error:
        # Another organiser sanctioned the same user at the same moment.
        raise Conflict(_l("这位用户刚刚被另一位主办方处理过，请刷新后重试。"),
                       code="sanction_taken") from error
    return sanction


@use_case()
def lift_sanction(hall: Hall, *, organiser: User | None, user_id: int) -> None:
    """Let a muted or banned user chat in the hall again; lifting nothing changes nothing.
    Lines a ban hid stay hidden (each can be shown again on its own)."""
    permissions.require_chat_moderator(organiser)
    sanction = db.session.scalar(select(ChatSanction).where(
        ChatSanction.hall_id == hall.id, ChatSanction.user_id == user_id))
    if sanction is not None:
        db.session.delete(sanction)
        db.session.flush()


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
