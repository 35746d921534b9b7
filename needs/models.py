"""Procurement needs (采购需求), the responses to them, and who they were matched to."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Organisation
from fair.database import Base, CreatedAt, Fen, IntPK, enum_column, utcnow


class NeedStatus(enum.Enum):
    """draft -> open -> closed (by the buyer or at the deadline); draft or open -> withdrawn."""

    draft = "draft"
    open = "open"
    closed = "closed"
    withdrawn = "withdrawn"


class ResponseStatus(enum.Enum):
    """submitted -> shortlisted or declined, by the need's buyer."""

    submitted = "submitted"
    shortlisted = "shortlisted"
    declined = "declined"


class Need(Base):
    """A buyer's procurement need in a fair: what, for where, for how much, by when."""

    __tablename__ = "needs"
    __table_args__ = (
        CheckConstraint("budget_min_fen > 0", "positive_budget"),
        CheckConstraint("budget_min_fen <= budget_max_fen", "budget_in_order"),
        CheckConstraint("max_responses > 0", "wants_responses"),
        CheckConstraint("response_count >= 0 AND response_count <= max_responses",
                        "responses_within_limit"),
        Index("ix_needs_fair_status", "fair_id", "status", "id"),
    )

    id: Mapped[IntPK]
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    title: Mapped[str] = mapped_column(String(200))
    #: What the buyer wrote (Markdown or HTML), kept for editing.
    description_source: Mapped[str] = mapped_column(Text, default="")
    #: Sanitised as project descriptions are (exhibitors.service.render_description).
    description_html: Mapped[str] = mapped_column(Text, default="")
    #: One of fair.reference.CATEGORIES.
    category: Mapped[str] = mapped_column(String(30))
    #: ISO 3166-2:CN code of the region the need is for.
    province: Mapped[str] = mapped_column(String(5))
    #: An optional city or district inside the province (渝中区).
    city: Mapped[str] = mapped_column(String(50), default="")
    budget_min_fen: Mapped[Fen]
    budget_max_fen: Mapped[Fen]
    #: Responses are taken until then; the need closes at it.
    deadline: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    max_responses: Mapped[int] = mapped_column(Integer)
    #: Responses taken so far; moved in the statement that checks the limit, so that two
    #: exhibitors racing for the last place cannot both have it.
    response_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[NeedStatus] = mapped_column(enum_column(NeedStatus, "need_status"),
                                               default=NeedStatus.draft)
    created_at: Mapped[CreatedAt]
    opened_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The buyer was told the need closes within a day (once).
    closing_told_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    organisation: Mapped[Organisation] = relationship(lazy="joined")

    @property
    def is_open(self) -> bool:
        """Open and before its deadline: responses are taken."""
        return self.status is NeedStatus.open and _aware(self.deadline) > utcnow()

    @property
    def is_public(self) -> bool:
        return self.status in (NeedStatus.open, NeedStatus.closed)

    @property
    def shown_status(self) -> NeedStatus:
        """An open need past its deadline is closed, whether or not the task has run yet."""
        return NeedStatus.closed if self.status is NeedStatus.open and not self.is_open \
            else self.status

    def __repr__(self) -> str:
        return f"<Need {self.id} {self.title!r} {self.status.value}>"


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class NeedTerm(Base):
    """The needs' search index: one row per term of a need, as exhibitors.catalogue cuts them."""

    __tablename__ = "need_terms"
    __table_args__ = (
        PrimaryKeyConstraint("need_id", "term"),
        Index("ix_need_terms_term", "term", "need_id"),
    )

    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"))
    #: As project_terms.term: a CJK character or bigram, or a lower-cased Latin word.
    term: Mapped[str] = mapped_column(
        String(40).with_variant(String(40, collation="C"), "postgresql")
    )

    def __repr__(self) -> str:
        return f"<NeedTerm {self.need_id} {self.term!r}>"


class NeedResponse(Base):
    """An exhibitor's answer to a need: one of its published projects, a price and a note."""

    __tablename__ = "need_responses"
    __table_args__ = (
        UniqueConstraint("need_id", "project_id", name="uq_need_responses_need_project"),
        CheckConstraint("price_fen > 0", "positive_price"),
    )

    id: Mapped[IntPK]
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    exhibitor_id: Mapped[int] = mapped_column(ForeignKey("exhibitors.id"), index=True)
    #: The quoted price in fen.
    price_fen: Mapped[Fen]
    note: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[ResponseStatus] = mapped_column(
        enum_column(ResponseStatus, "response_status"), default=ResponseStatus.submitted)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: When the buyer shortlisted, declined or signed it: from then on it cannot be edited.
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    need: Mapped[Need] = relationship(lazy="joined", innerjoin=True)
    project: Mapped[Project] = relationship(lazy="joined", innerjoin=True)
    exhibitor: Mapped[Exhibitor] = relationship(lazy="joined", innerjoin=True)

    def __repr__(self) -> str:
        return f"<NeedResponse {self.id} need={self.need_id} project={self.project_id}>"


class NeedMatch(Base):
    """An exhibitor told of a need when it opened, with its best matching project."""

    __tablename__ = "need_matches"
    __table_args__ = (PrimaryKeyConstraint("need_id", "exhibitor_id"),
                      Index("ix_need_matches_exhibitor", "exhibitor_id", "need_id"))

    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"))
    exhibitor_id: Mapped[int] = mapped_column(ForeignKey("exhibitors.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    #: Higher is better: category, region, words and budget (needs.service.score_project).
    score: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[CreatedAt]

    need: Mapped[Need] = relationship(lazy="joined", innerjoin=True)
    project: Mapped[Project] = relationship(lazy="joined", innerjoin=True)

    def __repr__(self) -> str:
        return f"<NeedMatch need={self.need_id} exhibitor={self.exhibitor_id} {self.score}>"
