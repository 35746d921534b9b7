"""The fair itself."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import CheckConstraint, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from fair.database import Base, CreatedAt, IntPK, enum_column


class FairStatus(enum.Enum):
    draft = "draft"
    open = "open"
    closed = "closed"


class Fair(Base):
    __tablename__ = "fairs"
    __table_args__ = (CheckConstraint("ends_at > starts_at", "ends_after_start"),)

    id: Mapped[IntPK]
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[FairStatus] = mapped_column(
        enum_column(FairStatus, "fair_status"), default=FairStatus.draft
    )
    created_at: Mapped[CreatedAt]

    @property
    def is_open(self) -> bool:
        return self.status is FairStatus.open

    def __repr__(self) -> str:
        return f"<Fair {self.id} {self.name!r} {self.status.value}>"
