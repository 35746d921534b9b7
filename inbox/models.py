"""Notifications: what a user is told, read or not, e-mailed or not."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fair.database import Base, CreatedAt, IntPK


class Notification(Base):
    """One thing a user is told, in its inbox (and by e-mail when SMTP is configured)."""

    __tablename__ = "notifications"
    __table_args__ = (
        #: The same news is told once, however often the request that caused it is retried.
        UniqueConstraint("user_id", "dedupe_key", name="uq_notifications_user_dedupe_key"),
        Index("ix_notifications_user_unread", "user_id", "read_at", "id"),
    )

    id: Mapped[IntPK]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: One of inbox.service.KINDS; the text is written when shown, in the reader's language.
    kind: Mapped[str] = mapped_column(String(30))
    #: What the text names (a need's title, a project's), and the page it links to.
    data: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    link: Mapped[str] = mapped_column(String(200), default="")
    #: Who and what caused it, such as "need-match:12": a second attempt finds the first.
    dedupe_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[CreatedAt]
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Sent by e-mail (or taken to be sent by a consumer): never sent twice.
    emailed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"<Notification {self.id} user={self.user_id} {self.kind}>"
