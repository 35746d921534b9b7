"""Halls of a fair, the showcases they stream and their chat."""

from __future__ import annotations

import datetime as dt
import enum
import secrets

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exhibitors.models import Project
from fair.accounts.models import User
from fair.database import Base, CreatedAt, IntPK, enum_column


def new_stream_secret() -> str:
    """A showcase's push secret: its push URLs are signed with it (livehalls.streaming)."""
    return secrets.token_hex(16)


class Hall(Base):
    __tablename__ = "halls"

    id: Mapped[IntPK]
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    #: An HLS (.m3u8) address, or empty to play the on-air project's uploaded video.
    stream_url: Mapped[str] = mapped_column(String(500), default="")
    #: The showcase streaming now, or None between showcases. ``use_alter`` breaks the
    #: halls <-> showcases cycle when tables are sorted for creation.
    on_air_showcase_id: Mapped[int | None] = mapped_column(
        ForeignKey("showcases.id", use_alter=True)
    )
    #: Joins counted so far (人次), written by livehalls.presence every few seconds.
    visits: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: The most viewers the hall had at once.
    peak_viewers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Where the hall comes in the fair's list of halls (smallest first).
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: A showcase whose stream starts goes on air by itself; otherwise an organiser puts it on.
    auto_on_air: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    #: How many minutes before its slot starts, and after it ends, a showcase may stream.
    grace_minutes: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    created_at: Mapped[CreatedAt]

    on_air: Mapped[Showcase | None] = relationship(
        foreign_keys=[on_air_showcase_id], lazy="joined", post_update=True
    )

    def __repr__(self) -> str:
        return f"<Hall {self.id} {self.name!r}>"


class FairAudience(Base):
    """The figures of a fair's whole audience that its halls cannot add up to: the peak."""

    __tablename__ = "fair_audiences"

    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"), primary_key=True)
    #: The most viewers the fair's halls had at once, each connection counted once.
    peak_viewers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def __repr__(self) -> str:
        return f"<FairAudience fair={self.fair_id} peak={self.peak_viewers}>"


class Showcase(Base):
    """A project streamed in a hall during a time slot; slots in one hall never overlap."""

    __tablename__ = "showcases"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", "ends_after_start"),
        Index("ix_showcases_hall_slot", "hall_id", "starts_at"),
        # The service refuses overlaps with a clear message; on PostgreSQL the database also
        # refuses them, so two organisers scheduling at once cannot both win.
        ExcludeConstraint(
            ("hall_id", "="),
            (func.tstzrange(text("starts_at"), text("ends_at")), "&&"),
            name="ex_showcases_no_overlap",
            using="gist",
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[IntPK]
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[CreatedAt]
    #: The secret behind the showcase's push signatures; a new one revokes every earlier URL.
    stream_secret: Mapped[str] = mapped_column(String(64), default=new_stream_secret,
                                               server_default="")
    #: The media server's client publishing the showcase now ("addr/clientid"), or None.
    streaming_client: Mapped[str | None] = mapped_column(String(100))
    stream_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    stream_ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: SHA-256 of the signature of the last accepted push: once its stream has ended (and the
    #: reconnect window passed) the same push URL is refused as reused.
    stream_signature: Mapped[str | None] = mapped_column(String(64))
    #: The recording of what was streamed, an MP4 stored under MEDIA_ROOT by this hash.
    replay_sha256: Mapped[str | None] = mapped_column(String(64))
    replay_size: Mapped[int | None] = mapped_column(BigInteger)
    replay_duration_ms: Mapped[int | None] = mapped_column(Integer)
    #: The exhibitor hid the replay from everyone else.
    replay_hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    project: Mapped[Project] = relationship(lazy="joined")

    @property
    def stream_name(self) -> str:
        """The name it is pushed and served under: public, since the HLS files carry it."""
        return f"h{self.hall_id}s{self.id}"

    @property
    def is_streaming(self) -> bool:
        return self.streaming_client is not None

    @property
    def has_replay(self) -> bool:
        """A replay anyone may watch."""
        return self.replay_sha256 is not None and not self.replay_hidden

    def __repr__(self) -> str:
        return f"<Showcase {self.id} hall={self.hall_id} project={self.project_id}>"


class PushAttempt(Base):
    """A stream the media server asked about (on_publish): accepted or refused, and why."""

    __tablename__ = "push_attempts"
    __table_args__ = (Index("ix_push_attempts_hall_id_id", "hall_id", "id"),)

    id: Mapped[IntPK]
    #: The hall the push named; None when the name named no hall at all.
    hall_id: Mapped[int | None] = mapped_column(ForeignKey("halls.id", ondelete="CASCADE"))
    showcase_id: Mapped[int | None] = mapped_column(
        ForeignKey("showcases.id", ondelete="SET NULL"))
    #: The stream name as the encoder sent it (never the signature).
    stream_name: Mapped[str] = mapped_column(String(100))
    accepted: Mapped[bool] = mapped_column(Boolean)
    #: Why it was refused (a code of livehalls.streaming.REFUSALS), "" when accepted.
    reason: Mapped[str] = mapped_column(String(30), default="")
    #: The encoder's address, as the media server saw it.
    addr: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[CreatedAt]

    def __repr__(self) -> str:
        return f"<PushAttempt {self.id} {self.stream_name!r} {self.reason or 'accepted'}>"


class ChatMessage(Base):
    """A line of a hall's chat; organisers hide a line rather than delete it."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        Index("ix_chat_messages_hall_id_id", "hall_id", "id"),
        # The rate limit counts a user's recent lines.
        Index("ix_chat_messages_user_created", "user_id", "created_at"),
    )

    id: Mapped[IntPK]
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: Plain text as typed; pages insert it as text, never as HTML.
    text: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[CreatedAt]
    #: When an organiser hid the line from everyone; None while it is visible.
    hidden_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    hidden_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")

    @property
    def is_hidden(self) -> bool:
        return self.hidden_at is not None

    def __repr__(self) -> str:
        return f"<ChatMessage {self.id} hall={self.hall_id} user={self.user_id}>"


class SanctionKind(enum.Enum):
    #: The user may watch and read but not chat in the hall.
    mute = "mute"
    #: As mute, and the user's lines in the hall were hidden when the ban was given.
    ban = "ban"


class ChatSanction(Base):
    """An organiser's mute or ban of one user in one hall's chat, until it is lifted."""

    __tablename__ = "chat_sanctions"
    __table_args__ = (UniqueConstraint("hall_id", "user_id", name="uq_chat_sanctions_hall_user"),)

    id: Mapped[IntPK]
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[SanctionKind] = mapped_column(enum_column(SanctionKind, "sanction_kind"))
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[CreatedAt]

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")

    def __repr__(self) -> str:
        return f"<ChatSanction {self.kind.value} hall={self.hall_id} user={self.user_id}>"
