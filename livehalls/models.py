"""Halls of a fair, the showcases they stream and their chat."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exhibitors.models import Project
from fair.accounts.models import User
from fair.database import Base, CreatedAt, IntPK


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

    project: Mapped[Project] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<Showcase {self.id} hall={self.hall_id} project={self.project_id}>"


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
