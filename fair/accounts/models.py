"""Users, their organisations and their API tokens."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fair.database import Base, CreatedAt, IntPK, enum_column


class Role(enum.Enum):
    organiser = "organiser"
    exhibitor = "exhibitor"
    buyer = "buyer"


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[IntPK]
    name: Mapped[str] = mapped_column(String(200))
    #: ISO 3166-2:CN code, one of fair.reference.PROVINCES.
    province: Mapped[str] = mapped_column(String(5), index=True)
    created_at: Mapped[CreatedAt]
    #: When an organiser verified this (buyer's) organisation: from then on its intents count
    #: in the public totals. None while unverified.
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The organiser who verified it; None for organisations verified by the migration that
    #: brought verification in, whose intents already counted.
    verified_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", use_alter=True))

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.name!r} {self.province}>"


class User(Base):
    __tablename__ = "users"

    id: Mapped[IntPK]
    #: Stored lower-cased so that sign-in ignores case.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    #: Argon2id hash.
    password_hash: Mapped[str] = mapped_column(String(200))
    #: The contact person (联系人).
    name: Mapped[str] = mapped_column(String(100))
    #: The contact's phone; buyers must give it, exhibitors see it on intents for their projects.
    phone: Mapped[str] = mapped_column(String(30), default="", server_default="")
    role: Mapped[Role] = mapped_column(enum_column(Role, "role"))
    #: Organisers act for the fair itself and have none.
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_at: Mapped[CreatedAt]

    organisation: Mapped[Organisation | None] = relationship(lazy="joined",
                                                             foreign_keys=[organisation_id])

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role.value}>"


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[IntPK]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: SHA-256 of the token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[CreatedAt]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} user={self.user_id} revoked={self.revoked_at is not None}>"
