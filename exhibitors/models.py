"""Exhibitors in a fair, their projects and the projects' media."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fair.accounts.models import Organisation
from fair.database import Base, CreatedAt, Fen, IntPK, enum_column


class ExhibitorStatus(enum.Enum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class ProjectStatus(enum.Enum):
    draft = "draft"
    published = "published"
    withdrawn = "withdrawn"


class MediaKind(enum.Enum):
    image = "image"
    video = "video"
    pdf = "pdf"


class Exhibitor(Base):
    """An organisation's application to (and place in) one fair."""

    __tablename__ = "exhibitors"
    __table_args__ = (UniqueConstraint("fair_id", "organisation_id", name="one_per_fair"),)

    id: Mapped[IntPK]
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[ExhibitorStatus] = mapped_column(
        enum_column(ExhibitorStatus, "exhibitor_status"), default=ExhibitorStatus.pending
    )
    applied_at: Mapped[CreatedAt]
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Why the organiser rejected the application; the exhibitor reads it on its portal.
    rejection_reason: Mapped[str] = mapped_column(String(500), default="", server_default="")
    #: The fair's booth fee has been paid (and not refunded); set by deals.payments.
    booth_fee_paid: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    organisation: Mapped[Organisation] = relationship(lazy="joined")

    @property
    def is_approved(self) -> bool:
        return self.status is ExhibitorStatus.approved

    def __repr__(self) -> str:
        return f"<Exhibitor {self.id} fair={self.fair_id} {self.status.value}>"


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint("price_fen > 0", "positive_price"),
        #: Covers the catalogue's facet counts, so they never read the table's rows.
        Index("ix_projects_catalogue", "fair_id", "status", "category", "province", "price_fen"),
        #: Price order, and counts within a price range without reading the rows.
        Index("ix_projects_fair_price", "fair_id", "status", "price_fen", "id", "category",
              "province"),
        #: Newest first, filtered by category, province and price without reading the rows.
        Index("ix_projects_fair_published", "fair_id", "status", "published_at", "id",
              "category", "province", "price_fen"),
    )

    id: Mapped[IntPK]
    fair_id: Mapped[int] = mapped_column(ForeignKey("fairs.id"))
    exhibitor_id: Mapped[int] = mapped_column(ForeignKey("exhibitors.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    #: One of fair.reference.CATEGORIES.
    category: Mapped[str] = mapped_column(String(30))
    #: The exhibitor organisation's province, copied here so the catalogue filters one table.
    province: Mapped[str] = mapped_column(String(5))
    summary: Mapped[str] = mapped_column(String(500), default="")
    #: The title and summary in English, for English readers and English search; optional.
    title_en: Mapped[str] = mapped_column(String(200), default="", server_default="")
    summary_en: Mapped[str] = mapped_column(String(500), default="", server_default="")
    #: What the exhibitor wrote (Markdown or HTML), kept for editing.
    description_source: Mapped[str] = mapped_column(Text, default="")
    #: The sanitised HTML that pages show; no script survives into it.
    description_html: Mapped[str] = mapped_column(Text, default="")
    #: Reference price in fen.
    price_fen: Mapped[Fen]
    #: Comma-separated free tags.
    tags: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[ProjectStatus] = mapped_column(
        enum_column(ProjectStatus, "project_status"), default=ProjectStatus.draft
    )
    created_at: Mapped[CreatedAt]
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    exhibitor: Mapped[Exhibitor] = relationship(lazy="joined")
    media: Mapped[list[Media]] = relationship(
        order_by="Media.id", cascade="all, delete-orphan", back_populates="project"
    )

    @property
    def is_published(self) -> bool:
        return self.status is ProjectStatus.published

    def title_in(self, locale: str) -> str:
        """The title English readers see when there is one; the Chinese one otherwise."""
        return self.title_en if locale == "en" and self.title_en else self.title

    def summary_in(self, locale: str) -> str:
        return self.summary_en if locale == "en" and self.summary_en else self.summary

    @property
    def tag_list(self) -> list[str]:
        return [tag for tag in self.tags.split(",") if tag]

    def __repr__(self) -> str:
        return f"<Project {self.id} {self.title!r} {self.status.value}>"


class ProjectTerm(Base):
    """The catalogue's inverted index: one row (a posting) per search term of a project.

    Each posting carries a copy of what the catalogue filters, counts and sorts by, so that a
    search reads one narrow index and never the wide project rows; catalogue.index_projects
    rewrites a project's postings whenever the project changes.
    """

    __tablename__ = "project_terms"
    __table_args__ = (
        #: A term's postings in the fair, published first, title matches and newest last
        #: (read backwards for relevance order), with every column a search needs.
        Index("ix_project_terms_search", "term", "fair_id", "status", "in_title", "published_at",
              "project_id", "category", "province", "price_fen", "exhibitor_id"),
        # Looking up another term of a matching project also reads whether it is in the
        # title, from the key alone (SQLite keeps the whole row in its key anyway).
        PrimaryKeyConstraint("project_id", "term", postgresql_include=["in_title"]),
        {"sqlite_with_rowid": False},
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    #: A lower-cased word, a CJK character or two adjacent ones, or "" (every project has that
    #: one). Compared by code point ("C" collation on PostgreSQL) so that a prefix search is a
    #: range scan.
    term: Mapped[str] = mapped_column(
        String(40).with_variant(String(40, collation="C"), "postgresql")
    )
    #: The term is in the project's title, which ranks it first.
    in_title: Mapped[bool] = mapped_column(Boolean)
    # Copies of the project's columns.
    fair_id: Mapped[int] = mapped_column(Integer)
    exhibitor_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[ProjectStatus] = mapped_column(enum_column(ProjectStatus, "project_status"))
    category: Mapped[str] = mapped_column(String(30))
    province: Mapped[str] = mapped_column(String(5))
    price_fen: Mapped[Fen]
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"<ProjectTerm {self.project_id} {self.term!r}>"


class CatalogueCount(Base):
    """How many published projects of a fair hold a term, per category, province, price range.

    The catalogue's facets for no words or one word are read from here instead of counted
    project by project; catalogue.index_projects keeps it in step in the same transaction.
    """

    __tablename__ = "catalogue_counts"

    fair_id: Mapped[int] = mapped_column(
        ForeignKey("fairs.id", ondelete="CASCADE"), primary_key=True
    )
    #: As in project_terms; "" counts every published project.
    term: Mapped[str] = mapped_column(
        String(40).with_variant(String(40, collation="C"), "postgresql"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(30), primary_key=True)
    province: Mapped[str] = mapped_column(String(5), primary_key=True)
    #: Index of the price range in catalogue.PRICE_BOUNDS.
    price_bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    projects: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"<CatalogueCount {self.fair_id} {self.term!r} {self.projects}>"


class Media(Base):
    __tablename__ = "media"
    __table_args__ = (CheckConstraint("size > 0", "positive_size"),)

    id: Mapped[IntPK]
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[MediaKind] = mapped_column(enum_column(MediaKind, "media_kind"))
    #: SHA-256 of the stored bytes; the file's name on disk, never a name a user sent.
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(50))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    #: The uploaded name, for display only, stripped of any path.
    original_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[CreatedAt]

    project: Mapped[Project] = relationship(back_populates="media")

    def __repr__(self) -> str:
        return f"<Media {self.id} {self.kind.value} {self.sha256[:8]}>"
