"""The fair itself."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from fair.database import Base, CreatedAt, IntPK, enum_column
from fair.money import MAX_CHARGE_FEN, MAX_DEAL_FEN


class FairStatus(enum.Enum):
    draft = "draft"
    open = "open"
    closed = "closed"


class Fair(Base):
    __tablename__ = "fairs"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", "ends_after_start"),
        CheckConstraint(f"booth_fee_fen >= 0 AND booth_fee_fen <= {MAX_CHARGE_FEN}",
                        "booth_fee_range"),
        CheckConstraint("deposit_percent BETWEEN 1 AND 100", "deposit_percent_range"),
        CheckConstraint(f"max_intent_fen > 0 AND max_intent_fen <= {MAX_DEAL_FEN}",
                        "max_intent_range"),
    )

    id: Mapped[IntPK]
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[FairStatus] = mapped_column(
        enum_column(FairStatus, "fair_status"), default=FairStatus.draft
    )
    created_at: Mapped[CreatedAt]
    #: What an approved exhibitor pays for its booth, in fen; 0 means no fee.
    booth_fee_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: Whether an exhibitor must have paid the booth fee before publishing a project.
    booth_fee_required: Mapped[bool] = mapped_column(Boolean, default=False,
                                                     server_default=false())
    #: The deposit (意向金) a buyer may pay on an intent, as a whole percent of its amount.
    deposit_percent: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    #: The most one intent may be worth at this fair, in fen; None for the general limit
    #: (fair.money.MAX_DEAL_FEN).
    max_intent_fen: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def is_open(self) -> bool:
        return self.status is FairStatus.open

    def __repr__(self) -> str:
        return f"<Fair {self.id} {self.name!r} {self.status.value}>"
