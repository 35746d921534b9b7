"""Behaviour events, their rollups, favourites and shares."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exhibitors.models import Project
from fair.database import Base, CreatedAt, IntPK

#: Big on PostgreSQL (41 million rows and more), an alias of the rowid on SQLite.
EventId = BigInteger().with_variant(Integer, "sqlite")


class Kind(enum.Enum):
    """What a visitor did (docs/design.md, "Event kinds")."""

    visit = "visit"  # opened the catalogue: a visit of the fair online (线上观展人次)
    view = "view"  # a project page or its API detail
    impression = "impression"  # a card seen in a list (beacon)
    search = "search"  # a catalogue search: words, facets, result count
    favourite = "favourite"
    share = "share"
    share_visit = "share_visit"  # someone opened a share link
    hall_visit = "hall_visit"  # joined a live hall: a visit of the fair online too
    watch = "watch"  # seconds of a hall or replay watched (beacon)
    sign_in = "sign_in"
    intent = "intent"
    # A 猜你喜欢 list shown (data: its projects) and one of its projects opened from it.
    recommendation_shown = "recommendation_shown"
    recommendation_click = "recommendation_click"


#: The kinds that count as visits (人次): the catalogue opened, a hall joined.
VISIT_KINDS = (Kind.visit.value, Kind.hall_visit.value)


class Event(Base):
    """One thing a visitor did, as written; deleted after the retention period (rollups stay)."""

    __tablename__ = "audience_events"
    __table_args__ = (
        Index("ix_audience_events_at", "at"),
        Index("ix_audience_events_user_id", "user_id"),
        Index("ix_audience_events_visitor", "visitor"),
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # No foreign keys on this table: it takes thousands of rows a second, each checked key
    # would cost a lookup, and every id below was checked (or read) before it was written.
    fair_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    project_id: Mapped[int | None] = mapped_column(Integer)
    hall_id: Mapped[int | None] = mapped_column(Integer)
    #: The showcase on air in the hall when it happened.
    showcase_id: Mapped[int | None] = mapped_column(Integer)
    #: The signed-in user, else None.
    user_id: Mapped[int | None] = mapped_column(Integer)
    #: The first-party anonymous visitor id (a random value in a cookie), else None.
    visitor: Mapped[str | None] = mapped_column(String(32))
    # Copied at write time, so that the portrait keeps them when the buyer's change.
    buyer_province: Mapped[str | None] = mapped_column(String(5))
    buyer_organisation_id: Mapped[int | None] = mapped_column(Integer)
    #: The project's category at the time.
    category: Mapped[str | None] = mapped_column(String(30))
    #: Who shared the link a share_visit came through.
    sharer_id: Mapped[int | None] = mapped_column(Integer)
    #: The kind's details: a search's words, facets and result count; seconds watched; a code.
    data: Mapped[dict[str, object] | None] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.kind} fair={self.fair_id}>"


class Rollup(Base):
    """How many events of a kind a day had, per fair, project, hall, showcase, category and
    buyer province: the portrait reads these, never the events. 0 and '' stand for none."""

    __tablename__ = "audience_rollups"
    __table_args__ = (Index("ix_audience_rollups_fair_kind", "fair_id", "kind", "day"),
                      Index("ix_audience_rollups_fair_project", "fair_id", "project_id"))

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    fair_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hall_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    showcase_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    category: Mapped[str] = mapped_column(String(30), primary_key=True)
    province: Mapped[str] = mapped_column(String(5), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Seconds watched, for `watch`; 0 for the other kinds.
    seconds: Mapped[int] = mapped_column(BigInteger, default=0)

    def __repr__(self) -> str:
        return f"<Rollup {self.day} fair={self.fair_id} {self.kind} {self.count}>"


class Breakdown(Base):
    """A fair's events of a kind per value of one dimension (a day, a project, a hall, a
    showcase, a category, a buyer province): a few rows each, what the organiser's portrait
    and the totals' visits read, kept with the rollups in each batch."""

    __tablename__ = "audience_breakdown"

    fair_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    #: day, project, hall, showcase, category or province.
    dimension: Mapped[str] = mapped_column(String(10), primary_key=True)
    #: The value, as text: an ISO date, an id ('0' for none), a category, a province ('').
    key: Mapped[str] = mapped_column(String(30), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    seconds: Mapped[int] = mapped_column(BigInteger, default=0)

    def __repr__(self) -> str:
        return f"<Breakdown fair={self.fair_id} {self.kind} {self.dimension}={self.key}>"


class Reach(Base):
    """Who (a user or a visitor id) did a kind to a project, once per buyer province: the
    distinct buyers behind a cell of an exhibitor's portrait (fewer than three are hidden)."""

    __tablename__ = "audience_reach"

    fair_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    project_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    province: Mapped[str] = mapped_column(String(5), primary_key=True)
    #: "u<user id>" or "v<visitor id>".
    actor: Mapped[str] = mapped_column(String(40), primary_key=True)

    def __repr__(self) -> str:
        return f"<Reach project={self.project_id} {self.kind} {self.actor}>"


class SearchRollup(Base):
    """A day's catalogue searches per fair and words: how many, and how many found nothing."""

    __tablename__ = "audience_searches"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    fair_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: The words, trimmed and lower-cased; '' for a search by facets only.
    terms: Mapped[str] = mapped_column(String(100), primary_key=True)
    searches: Mapped[int] = mapped_column(BigInteger, default=0)
    zero_results: Mapped[int] = mapped_column(BigInteger, default=0)

    def __repr__(self) -> str:
        return f"<SearchRollup {self.day} {self.terms!r} {self.searches}>"


class Imported(Base):
    """A part of a replay already written: writing it again would count it twice."""

    __tablename__ = "audience_imports"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    events: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[CreatedAt]

    def __repr__(self) -> str:
        return f"<Imported {self.source} {self.events}>"


class Favourite(Base):
    """A project a signed-in user or a visitor keeps (收藏): state, not an event."""

    __tablename__ = "favourites"
    __table_args__ = (
        UniqueConstraint("project_id", "user_id", name="uq_favourites_project_user"),
        UniqueConstraint("project_id", "visitor", name="uq_favourites_project_visitor"),
        Index("ix_favourites_user_id", "user_id"),
        Index("ix_favourites_visitor", "visitor"),
    )

    id: Mapped[IntPK]
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    visitor: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[CreatedAt]

    project: Mapped[Project] = relationship(lazy="joined", innerjoin=True)

    def __repr__(self) -> str:
        return f"<Favourite project={self.project_id} user={self.user_id}>"


class Share(Base):
    """A share link (分享) of a project: its short code, who made it, visits through it."""

    __tablename__ = "shares"
    __table_args__ = (UniqueConstraint("code", name="uq_shares_code"),
                      Index("ix_shares_user_id", "user_id"))

    id: Mapped[IntPK]
    #: The short code in /s/<code>.
    code: Mapped[str] = mapped_column(String(16))
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    visitor: Mapped[str | None] = mapped_column(String(32))
    #: Visits through the link, added with each batch of events that holds them.
    visits: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[CreatedAt]

    def __repr__(self) -> str:
        return f"<Share {self.code} project={self.project_id} visits={self.visits}>"
