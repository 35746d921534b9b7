"""Halls of a fair."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from fair.database import Base, CreatedAt, IntPK


class Hall(Base):
    __tablename__ = "halls"

    id: Mapped[IntPK]
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    #: An HLS (.m3u8) address, or empty to play the on-air project's uploaded video.
    stream_url: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[CreatedAt]

    def __repr__(self) -> str:
        return f"<Hall {self.id} {self.name!r}>"
