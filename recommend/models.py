"""The recommender's built model, stored so that every server process serves the same one."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from fair.database import Base


class StoredModel(Base):
    """A fair's latest recommendation model: JSON, zlib-compressed (recommend.ranking.Model)."""

    __tablename__ = "recommend_models"

    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id", ondelete="CASCADE"),
                                         primary_key=True, autoincrement=False)
    #: Grows by one with each rebuild: a process reloads its copy when this moves.
    version: Mapped[int] = mapped_column(Integer, default=1)
    built_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: Seconds the build took (the operator's figure).
    seconds: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[bytes] = mapped_column(LargeBinary)

    def __repr__(self) -> str:
        return f"<StoredModel fair={self.fair_id} v{self.version}>"
