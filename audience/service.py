"""The audience's rules: events checked and written in batches with their rollups, favourites,
share links, a person's own data, and how long raw events are kept."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import ARRAY, Integer, any_, bindparam, delete, select, text, update
from sqlalchemy.exc import IntegrityError

from audience.models import (
    Event,
    Favourite,
    Imported,
    Kind,
    Reach,
    Share,
)
from exhibitors import service as exhibitor_service
from exhibitors.models import Project
from fair import permissions, tasks
from fair.accounts.models import Role, User
from fair.database import as_utc, use_case, utcnow
from fair.errors import InvalidInput, NotFound
from fair.extensions import db
from fair.models import Fair
from livehalls.models import Hall, Showcase

#: The fair's days are Chengdu's: a rollup's day is the local date of its events.
FAIR_TIMEZONE = ZoneInfo("Asia/Shanghai")
#: The most events one beacon request may carry.
MAX_BATCH = 500
#: How far from the server's clock a beacon's event may be: a page left open or a beacon sent
#: late is hours behind, a client's clock minutes ahead; anything else is refused.
MAX_PAST = dt.timedelta(hours=24)
MAX_FUTURE = dt.timedelta(minutes=5)
#: What only the browser sees, and so the only kinds the beacon brings; the server records the
#: others itself, so that nobody can post intents, favourites or visits that never happened.
BEACON_KINDS = frozenset({Kind.impression.value, Kind.watch.value, Kind.share.value})
#: Every kind, to tell a kind only the server records from one that does not exist.
_KINDS = frozenset(kind.value for kind in Kind)
#: The kinds whose distinct buyers per project are kept (audience_reach): an exhibitor's
#: portrait shows their counts only where three or more buyers stand behind them.
REACH_KINDS = frozenset({Kind.view.value, Kind.favourite.value, Kind.share.value,
                         Kind.intent.value})
#: What a beacon event may point at, and how each is found in its fair.
OBJECT_TYPES = ("project", "hall", "showcase")
#: Seconds one `watch` event may report.
MAX_WATCH_SECONDS = 3_600
#: The longest search words kept.
MAX_TERMS = 100

EventRow = dict[str, Any]


@dataclass(frozen=True)
class Actor:
    """Who did it: a signed-in user, or a visitor known only by its cookie, with the buyer's
    organisation and province as they are now (copied into each event)."""

    user_id: int | None
    visitor: str | None
    province: str | None = None
    organisation_id: int | None = None

    @classmethod
    def of(cls, user: User | None, visitor: str | None) -> Actor:
        if user is None:
            return cls(user_id=None, visitor=visitor)
        organisation = user.organisation if user.role is Role.buyer else None
        return cls(user_id=user.id, visitor=visitor,
                   province=organisation.province if organisation else None,
                   organisation_id=organisation.id if organisation else None)

    @property
    def key(self) -> str | None:
        """One buyer, however it came: its user id when signed in, else its visitor id."""
        if self.user_id is not None:
            return f"u{self.user_id}"
        return f"v{self.visitor}" if self.visitor else None


def event_row(kind: Kind, *, fair_id: int, actor: Actor, at: dt.datetime | None = None,
              project_id: int | None = None, hall_id: int | None = None,
              showcase_id: int | None = None, category: str | None = None,
              sharer_id: int | None = None, data: Mapping[str, Any] | None = None) -> EventRow:
    """An event as the batch writer takes it (the columns of audience_events)."""
    return {
        "at": at or utcnow(), "fair_id": fair_id, "kind": kind.value, "project_id": project_id,
        "hall_id": hall_id, "showcase_id": showcase_id, "user_id": actor.user_id,
        "visitor": actor.visitor if actor.user_id is None else None,
        "buyer_province": actor.province, "buyer_organisation_id": actor.organisation_id,
        "category": category, "sharer_id": sharer_id,
        "data": dict(data) if data is not None else None,
    }


def search_data(terms: str, facets: Mapping[str, Any], results: int) -> dict[str, Any]:
    """What a search event keeps: the words as typed (trimmed), the facets given, the count."""
    return {"terms": terms.strip()[:MAX_TERMS],
            "facets": {name: value for name, value in facets.items() if value not in (None, "")},
            "results": results}


# --- The beacon ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    index: int
    error: str


@dataclass(frozen=True)
class Checked:
    """A beacon batch sorted: the events to write, and why each of the others was refused."""

    rows: list[EventRow]
    refused: list[Refusal]


def check_beacon(events: Sequence[Mapping[str, Any]], *, actor: Actor,
                 now: dt.datetime | None = None) -> Checked:
    """Sort a beacon's events into those to write and those refused, each with its reason.

    One bad event never spoils the others: an unknown kind, a kind only the server records, an
    unknown fair, an object of another fair, or a time far from now refuses that event alone.
    The batch's shape (a list of at most MAX_BATCH objects) was checked by the API's schema.
    """
    if len(events) > MAX_BATCH:
        raise InvalidInput(_l("每批最多 %(count)s 个事件。", count=MAX_BATCH),
                           code="batch_too_large")
    if not all(isinstance(event, dict) for event in events):
        raise InvalidInput(_l("每个事件都须是一个对象。"), code="malformed_batch",
                           fields={"events": [_l("每个事件都须是一个对象。")]})
    now = now or utcnow()
    owners = _owners(events)
    # Every row is this one with the event's own fields: the actor's are copied, not rebuilt.
    base = event_row(Kind.impression, fair_id=0, actor=actor, at=now)
    rows: list[EventRow] = []
    refused: list[Refusal] = []
    for index, event in enumerate(events):
        try:
            rows.append(_beacon_row(event, base=base, now=now, owners=owners))
        except _Refused as refusal:
            refused.append(Refusal(index=index, error=refusal.code))
    return Checked(rows=rows, refused=refused)


class _Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


#: (object type, id) -> (fair id, project id, hall id, category) of what events point at.
_Owners = dict[tuple[str, int], tuple[int, int | None, int | None, str | None]]


def _owners(events: Sequence[Mapping[str, Any]]) -> tuple[set[int], _Owners]:
    """The fairs that exist and the fair of every object the batch names: a query per type
    of object named, and one for fairs only when an event names a fair none of them is of."""
    wanted: dict[str, set[int]] = {kind: set() for kind in OBJECT_TYPES}
    fairs: set[int] = set()
    for event in events:
        fair_id = event.get("fair_id")
        if _is_id(fair_id):
            fairs.add(fair_id)
        kind, object_id = event.get("object_type"), event.get("object_id")
        if kind in OBJECT_TYPES and _is_id(object_id):  # a tuple: a list or dict is no key
            wanted[kind].add(object_id)
    owners: _Owners = {}
    if wanted["project"]:
        for project_id, fair_id, category in db.session.execute(
            select(Project.id, Project.fair_id, Project.category)
            .where(_among(Project.id, wanted["project"]))
        ):
            owners["project", project_id] = (fair_id, project_id, None, category)
    if wanted["hall"]:
        for hall_id, fair_id in db.session.execute(
            select(Hall.id, Hall.fair_id).where(_among(Hall.id, wanted["hall"]))
        ):
            owners["hall", hall_id] = (fair_id, None, hall_id, None)
    if wanted["showcase"]:
        for showcase_id, hall_id, fair_id in db.session.execute(
            select(Showcase.id, Showcase.hall_id, Hall.fair_id)
            .join(Hall, Hall.id == Showcase.hall_id)
            .where(_among(Showcase.id, wanted["showcase"]))
        ):
            owners["showcase", showcase_id] = (fair_id, None, hall_id, None)
    # The fair of an object that exists exists too (a fair is never deleted under its objects).
    known = {owner[0] for owner in owners.values()} & fairs
    unsure = fairs - known
    if unsure:
        known |= set(db.session.scalars(select(Fair.id).where(_among(Fair.id, unsure))))
    return known, owners


def _among(column: Any, ids: set[int]) -> Any:
    """`column IN ids`; on PostgreSQL as `= ANY(array)`, one parameter instead of hundreds
    (the statement is prepared once, not parsed again for each count of ids). The array goes
    as an array: sent as text and cast in the statement, a sequential scan cast it again for
    every row (PostgreSQL's CPU per beacon batch went from 6.5 to 39 ms)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("ids", sorted(ids), type_=ARRAY(Integer)))
    return column.in_(ids)


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31


def _beacon_row(event: Mapping[str, Any], *, base: EventRow, now: dt.datetime,
                owners: tuple[set[int], _Owners]) -> EventRow:
    """The row of one beacon event (a copy of `base`, the actor's), or _Refused."""
    fairs, objects = owners
    kind = event.get("kind")
    if not isinstance(kind, str):
        raise _Refused("unknown_kind")
    if kind not in BEACON_KINDS:
        raise _Refused("kind_recorded_by_server" if kind in _KINDS else "unknown_kind")
    fair_id = event.get("fair_id")
    if not _is_id(fair_id) or fair_id not in fairs:
        raise _Refused("unknown_fair")
    at = event.get("at")
    at = now if at is None else _beacon_time(at, now)
    object_type, object_id = event.get("object_type"), event.get("object_id")
    project_id = hall_id = showcase_id = None
    category = None
    if object_type is not None or object_id is not None:
        owner = objects.get((object_type, object_id)) if (
            object_type in OBJECT_TYPES and _is_id(object_id)) else None
        if owner is None:
            raise _Refused("unknown_object")
        if owner[0] != fair_id:
            raise _Refused("object_of_another_fair")
        _, project_id, hall_id, category = owner
        showcase_id = object_id if object_type == "showcase" else None
    data: dict[str, Any] | None = None
    if kind == _WATCH:
        seconds = event.get("seconds")
        if not _is_id(seconds) or seconds > MAX_WATCH_SECONDS or hall_id is None:
            raise _Refused("invalid_watch")
        data = {"seconds": seconds}
    elif project_id is None:
        raise _Refused("needs_project")  # impressions and shares are of a project
    return {**base, "at": at, "fair_id": fair_id, "kind": kind, "project_id": project_id,
            "hall_id": hall_id, "showcase_id": showcase_id, "category": category, "data": data}


def _beacon_time(value: object, now: dt.datetime) -> dt.datetime:
    if not isinstance(value, str):
        raise _Refused("invalid_time")
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise _Refused("invalid_time") from error
    if at.tzinfo is None:
        raise _Refused("invalid_time")
    if not now - MAX_PAST <= at <= now + MAX_FUTURE:
        raise _Refused("time_out_of_range")
    return at.astimezone(dt.UTC)


# --- Writing a batch -----------------------------------------------------------------------


def day_of(at: dt.datetime) -> dt.date:
    """The fair's day an event counts in."""
    return as_utc(at).astimezone(FAIR_TIMEZONE).date()


def rollup_key(row: Mapping[str, Any], day: dt.date | None = None) -> tuple[Any, ...]:
    """The rollup row an event adds to (0 and '' stand for none)."""
    return (day or day_of(row["at"]), row["fair_id"], row["kind"], row["project_id"] or 0,
            row["hall_id"] or 0, row["showcase_id"] or 0, row["category"] or "",
            row["buyer_province"] or "")


class _Days:
    """day_of for a batch's events, which nearly all fall on one day: the day's bounds are
    kept, and only an event outside them converts its time zone."""

    def __init__(self) -> None:
        self.start = self.end = dt.datetime.min.replace(tzinfo=dt.UTC)
        self.day = dt.date.min

    def of(self, at: dt.datetime) -> dt.date:
        at = as_utc(at)
        if not self.start <= at < self.end:
            self.day = day_of(at)
            midnight = dt.datetime.combine(self.day, dt.time(), tzinfo=FAIR_TIMEZONE)
            self.start = midnight.astimezone(dt.UTC)
            self.end = (midnight + dt.timedelta(days=1)).astimezone(dt.UTC)
        return self.day


_WATCH, _SEARCH, _SHARE_VISIT = Kind.watch.value, Kind.search.value, Kind.share_visit.value
@dataclass(frozen=True)
class _Counters:
    """A table of counters a batch adds to: one row per key, its counters added to on conflict
    (none: the row is inserted once). Written as one statement per batch: on PostgreSQL the
    rows travel as one array per column (`unnest`), elsewhere as an executemany."""

    table: str
    #: The key's columns, each with its PostgreSQL type.
    keys: tuple[tuple[str, str], ...]
    counters: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return [name for name, _ in self.keys] + list(self.counters)

    def _conflict(self) -> str:
        if not self.counters:
            return " ON CONFLICT DO NOTHING"
        return (f" ON CONFLICT ({', '.join(name for name, _ in self.keys)}) DO UPDATE SET "
                + ", ".join(f"{name} = {self.table}.{name} + excluded.{name}"
                            for name in self.counters))

    def rows_statement(self) -> str:
        return (f"INSERT INTO {self.table} ({', '.join(self.columns)})"  # noqa: S608 - names
                f" VALUES ({', '.join(':' + name for name in self.columns)})" + self._conflict())

    def arrays_statement(self) -> str:
        types = [kind for _, kind in self.keys] + ["bigint"] * len(self.counters)
        return (f"INSERT INTO {self.table} ({', '.join(self.columns)})"  # noqa: S608 - names
                f" SELECT * FROM unnest({', '.join(f'%s::{kind}[]' for kind in types)})"
                + self._conflict())


_ROLLUPS = _Counters("audience_rollups", (
    ("day", "date"), ("fair_id", "int"), ("kind", "text"), ("project_id", "int"),
    ("hall_id", "int"), ("showcase_id", "int"), ("category", "text"), ("province", "text")),
    ("count", "seconds"))
_BREAKDOWN = _Counters("audience_breakdown", (
    ("fair_id", "int"), ("kind", "text"), ("dimension", "text"), ("key", "text")),
    ("count", "seconds"))
_SEARCHES = _Counters("audience_searches", (("day", "date"), ("fair_id", "int"),
                                            ("terms", "text")), ("searches", "zero_results"))
_REACH = _Counters("audience_reach", (("fair_id", "int"), ("project_id", "int"),
                                      ("kind", "text"), ("province", "text"), ("actor", "text")))
_STATEMENTS = {counters.table: (text(counters.rows_statement()), counters.arrays_statement())
               for counters in (_ROLLUPS, _BREAKDOWN, _SEARCHES, _REACH)}

#: The dimensions of audience_breakdown, and where each is in a rollup key.
BREAKDOWN_DIMENSIONS = {"day": 0, "project": 3, "hall": 4, "showcase": 5, "category": 6,
                        "province": 7}


def breakdown_keys(key: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The breakdown rows (fair, kind, dimension, value) a rollup key adds to."""
    fair_id, kind = key[1], key[2]
    return [(fair_id, kind, dimension,
             key[index].isoformat() if dimension == "day" else str(key[index]))
            for dimension, index in BREAKDOWN_DIMENSIONS.items()]


_EVENTS = Event.__table__
#: In this order in COPY and INSERT: `at` first and `data` last, as _insert_events binds them.
_EVENT_COLUMNS = ("at", "fair_id", "kind", "project_id", "hall_id", "showcase_id", "user_id",
                  "visitor", "buyer_province", "buyer_organisation_id", "category", "sharer_id",
                  "data")
_ROW_BUT_DATA = itemgetter(*_EVENT_COLUMNS[:-1])
_INSERT_EVENTS = (
    f"INSERT INTO audience_events ({', '.join(_EVENT_COLUMNS)})"  # noqa: S608 - names only
    f" VALUES ({', '.join('?' for _ in _EVENT_COLUMNS)})"
)


def imported(sources: Sequence[str]) -> set[str]:
    """The parts of a replay, among `sources`, written already."""
    return set(db.session.scalars(select(Imported.source).where(Imported.source.in_(sources))))


@use_case()
def write_events(rows: Sequence[EventRow], *, sources: Sequence[str] = ()) -> int:
    """Write a batch of events and add them to the rollups, in one transaction.

    The one write path of events: the buffer of every process (audience.recording) and the
    replay both come through here. On PostgreSQL the events go in with COPY, elsewhere as one
    multi-row INSERT; the rollups take one UPSERT per row they change, not per event. With
    `sources` (the parts of a replay these events are), a batch whose parts were written
    already is skipped: written twice, nothing changes. Returns how many events were written.
    """
    if not rows:
        return 0
    if sources:
        if db.session.scalar(select(Imported.source).where(Imported.source.in_(sources))):
            return 0
        db.session.add_all(Imported(source=source, events=len(rows)) for source in sources)
        db.session.flush()
    _write(rows)
    return len(rows)


def _write(rows: Sequence[EventRow]) -> None:
    """Write events and their rollups in the session's transaction."""
    _complete(rows)
    _insert_events(rows)
    _add_to_rollups(rows)


def _complete(rows: Sequence[EventRow]) -> None:
    """Fill in what the recorder did not know: a project's category, the showcase on air in
    the hall an intent was signed from (as of this batch, at most a flush after the signing)."""
    projects = {row["project_id"] for row in rows
                if row["project_id"] is not None and row["category"] is None}
    if projects:
        categories = dict(db.session.execute(
            select(Project.id, Project.category).where(Project.id.in_(projects))
        ).tuples().all())
        for row in rows:
            if row["category"] is None and row["project_id"] is not None:
                row["category"] = categories.get(row["project_id"])
    halls = {row["hall_id"] for row in rows if row["kind"] == Kind.intent.value
             and row["hall_id"] is not None and row["showcase_id"] is None}
    if halls:
        on_air = dict(db.session.execute(
            select(Hall.id, Hall.on_air_showcase_id).where(Hall.id.in_(halls))
        ).tuples().all())
        for row in rows:
            if row["kind"] == Kind.intent.value and row["showcase_id"] is None and row["hall_id"]:
                row["showcase_id"] = on_air.get(row["hall_id"])


def _insert_events(rows: Sequence[EventRow]) -> None:
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        dbapi = connection.connection.driver_connection
        assert dbapi is not None  # noqa: S101 - a connection in use has its driver's
        with dbapi.cursor() as cursor, cursor.copy(
            f"COPY audience_events ({', '.join(_EVENT_COLUMNS)}) FROM STDIN"
        ) as copy:
            for row in rows:
                data = row["data"]
                copy.write_row((*_ROW_BUT_DATA(row), None if data is None
                                else json.dumps(data, ensure_ascii=False)))
    else:
        # One executemany on the driver's cursor, the values bound as SQLAlchemy would bind
        # them (its datetime and JSON formats): the ORM's bulk insert, and even Core's, spend
        # more time on each row than SQLite does.
        dialect = connection.dialect
        at = _EVENTS.c.at.type.dialect_impl(dialect).bind_processor(dialect)
        data = _EVENTS.c.data.type.dialect_impl(dialect).bind_processor(dialect)
        dbapi = connection.connection.driver_connection
        assert at is not None  # noqa: S101 - SQLite's DateTime binds through a function
        assert data is not None  # noqa: S101 - and so does its JSON
        assert dbapi is not None  # noqa: S101 - a connection in use has its driver's
        dbapi.cursor().executemany(_INSERT_EVENTS, [
            (at(row["at"]), *(row[column] for column in _EVENT_COLUMNS[1:-1]),
             None if row["data"] is None else data(row["data"])) for row in rows])


def _add(counters: _Counters, rows: list[tuple[Any, ...]]) -> None:
    """Add rows (key, then counters) to a table of counters, in one statement."""
    if not rows:
        return
    by_rows, by_arrays = _STATEMENTS[counters.table]
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        db.session.execute(by_rows, [dict(zip(counters.columns, row, strict=True))
                                     for row in rows])
        return
    dbapi = connection.connection.driver_connection
    assert dbapi is not None  # noqa: S101 - a connection in use has its driver's
    with dbapi.cursor() as cursor:
        cursor.execute(by_arrays, [list(column) for column in zip(*rows, strict=True)])


def _add_to_rollups(rows: Sequence[EventRow]) -> None:
    counts: Counter[tuple[Any, ...]] = Counter()
    seconds: Counter[tuple[Any, ...]] = Counter()
    searches: Counter[tuple[Any, ...]] = Counter()
    zero: Counter[tuple[Any, ...]] = Counter()
    reach: set[tuple[Any, ...]] = set()
    share_visits: Counter[str] = Counter()
    days = _Days()
    for row in rows:
        kind = row["kind"]
        key = rollup_key(row, days.of(row["at"]))
        counts[key] += 1
        data = row["data"]
        if data is None:
            pass
        elif kind == _WATCH:
            seconds[key] += int(data.get("seconds", 0))
        elif kind == _SEARCH:
            search = (key[0], row["fair_id"], str(data.get("terms", "")).strip().lower())
            searches[search] += 1
            zero[search] += data.get("results") == 0
        elif kind == _SHARE_VISIT and data.get("code"):
            share_visits[data["code"]] += 1
        if kind in REACH_KINDS and row["project_id"]:
            actor = f"u{row['user_id']}" if row["user_id"] else (
                f"v{row['visitor']}" if row["visitor"] else None)
            if actor:
                reach.add((row["fair_id"], row["project_id"], kind,
                           row["buyer_province"] or "", actor))
    breakdown: Counter[tuple[Any, ...]] = Counter()
    breakdown_seconds: Counter[tuple[Any, ...]] = Counter()
    for key, count in counts.items():
        for cell in breakdown_keys(key):
            breakdown[cell] += count
            breakdown_seconds[cell] += seconds[key]
    # Sorted, so that two batches take the rows they share in one order and never deadlock.
    _add(_ROLLUPS, [(*key, count, seconds[key]) for key, count in sorted(counts.items())])
    _add(_BREAKDOWN, [(*cell, count, breakdown_seconds[cell])
                      for cell, count in sorted(breakdown.items())])
    _add(_SEARCHES, [(*search, count, zero[search])
                     for search, count in sorted(searches.items())])
    _add(_REACH, sorted(reach))
    for code, visits in sorted(share_visits.items()):
        db.session.execute(update(Share).where(Share.code == code)
                           .values(visits=Share.visits + visits))


# --- Favourites and shares -----------------------------------------------------------------


def _owner_filter(model: type[Favourite] | type[Share], actor: Actor) -> Any:
    if actor.user_id is not None:
        return model.user_id == actor.user_id
    if actor.visitor is None:
        raise InvalidInput(_l("请接受本站的 Cookie 或登录后再收藏。"),
                           code="no_visitor")
    return model.visitor == actor.visitor


@use_case()
def favourite_project(project_id: int, *, user: User | None, actor: Actor,
                      record: bool = True) -> Favourite:
    """Keep a project among the actor's favourites (收藏); again changes nothing."""
    project = exhibitor_service.access_project(project_id, user)
    if not project.is_published:
        raise NotFound(_l("没有这个项目。"))
    found = db.session.scalar(select(Favourite).where(
        Favourite.project_id == project.id, _owner_filter(Favourite, actor)))
    if found is not None:
        return found
    favourite = Favourite(fair_id=project.fair_id, project_id=project.id, user_id=actor.user_id,
                          visitor=None if actor.user_id is not None else actor.visitor)
    try:
        with db.session.begin_nested():
            db.session.add(favourite)
    except IntegrityError:
        # The same favourite from a request sent twice at once: the other one won.
        found = db.session.scalar(select(Favourite).where(
            Favourite.project_id == project.id, _owner_filter(Favourite, actor)))
        assert found is not None  # noqa: S101 - it is what the unique index met
        return found
    if record:
        # Written with the favourite, in its transaction: a favourite is never lost, nor
        # counted without being kept.
        _write([event_row(Kind.favourite, fair_id=project.fair_id, actor=actor,
                          project_id=project.id, category=project.category)])
    return favourite


@use_case()
def unfavourite_project(project_id: int, *, actor: Actor) -> None:
    """Take a project out of the actor's favourites; again changes nothing."""
    db.session.execute(delete(Favourite).where(Favourite.project_id == project_id,
                                               _owner_filter(Favourite, actor)))


def list_favourites(*, actor: Actor) -> list[Favourite]:
    """The actor's favourites that are still in the catalogue, newest first."""
    if actor.user_id is None and actor.visitor is None:
        return []
    found = db.session.scalars(
        select(Favourite).where(_owner_filter(Favourite, actor))
        .order_by(Favourite.created_at.desc(), Favourite.id.desc()))
    return [favourite for favourite in found if favourite.project.is_published]


#: Letters of a share code: no 0/O or 1/l/I to misread.
_CODE_LETTERS = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8


@use_case()
def share_project(project_id: int, *, user: User | None, actor: Actor) -> Share:
    """A share link (分享) of a project for the actor: the same one each time it asks."""
    project = exhibitor_service.access_project(project_id, user)
    if not project.is_published:
        raise NotFound(_l("没有这个项目。"))
    found = db.session.scalar(select(Share).where(Share.project_id == project.id,
                                                  _owner_filter(Share, actor)))
    if found is not None:
        return found
    share = Share(code="".join(secrets.choice(_CODE_LETTERS) for _ in range(CODE_LENGTH)),
                  fair_id=project.fair_id, project_id=project.id, user_id=actor.user_id,
                  visitor=None if actor.user_id is not None else actor.visitor)
    db.session.add(share)
    db.session.flush()
    _write([event_row(Kind.share, fair_id=project.fair_id, actor=actor,
                      project_id=project.id, category=project.category,
                      data={"code": share.code})])
    return share


@dataclass(frozen=True)
class Followed:
    """A share link followed: the link, and the visit to record (None for one's own link)."""

    share: Share
    visit: EventRow | None


def follow_share(code: str, *, actor: Actor) -> Followed:
    """The share link behind a code; the visit counts for its sharer and its project."""
    share = db.session.scalar(select(Share).where(Share.code == code))
    if share is None:
        raise NotFound(_l("没有这个分享链接。"))
    own = share.user_id is not None and share.user_id == actor.user_id
    own = own or (share.user_id is None and share.visitor == actor.visitor)
    visit = None if own else event_row(
        Kind.share_visit, fair_id=share.fair_id, actor=actor, project_id=share.project_id,
        sharer_id=share.user_id, data={"code": share.code})
    return Followed(share=share, visit=visit)


# --- A person's own data (PIPL) ------------------------------------------------------------


def own_data(user: User | None, *, visitor: str | None) -> dict[str, Any]:
    """Everything the fair recorded of the signed-in user's behaviour, to download."""
    user = permissions.require_user(user)
    owner = Event.user_id == user.id
    if visitor:
        owner = owner | (Event.visitor == visitor)
    events = db.session.scalars(select(Event).where(owner).order_by(Event.at, Event.id))
    favourites = db.session.scalars(select(Favourite).where(Favourite.user_id == user.id))
    shares = db.session.scalars(select(Share).where(Share.user_id == user.id))
    return {
        "user": {"id": user.id, "email": user.email},
        "events": [{column: _plain(getattr(event, column)) for column in ("id", *_EVENT_COLUMNS)}
                   for event in events],
        "favourites": [{"project_id": item.project_id,
                        "created_at": _plain(item.created_at)} for item in favourites],
        "shares": [{"code": item.code, "project_id": item.project_id, "visits": item.visits}
                   for item in shares],
    }


def _plain(value: object) -> object:
    return as_utc(value).isoformat() if isinstance(value, dt.datetime) else value


@use_case()
def delete_own_data(user: User | None, *, visitor: str | None) -> int:
    """Delete the user's raw events, favourites and the buyer-reach rows that name them; the
    rollups keep their counts, which name nobody. Returns how many events went."""
    user = permissions.require_user(user)
    owner = Event.user_id == user.id
    actors = [f"u{user.id}"]
    if visitor:
        owner = owner | (Event.visitor == visitor)
        actors.append(f"v{visitor}")
    deleted = db.session.execute(delete(Event).where(owner)).rowcount
    db.session.execute(delete(Reach).where(Reach.actor.in_(actors)))
    db.session.execute(delete(Favourite).where(Favourite.user_id == user.id))
    db.session.execute(update(Share).where(Share.user_id == user.id).values(user_id=None))
    return int(deleted or 0)


# --- Retention -----------------------------------------------------------------------------


@use_case()
def delete_expired_events(*, days: int, now: dt.datetime | None = None) -> int:
    """Delete raw events older than `days`; the rollups keep them counted."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    return int(db.session.execute(delete(Event).where(Event.at < cutoff)).rowcount or 0)


@tasks.periodic_task(tasks.crontab(minute="17", hour="3"))
def expire_events() -> None:
    """Every night: raw events past the retention period (AUDIENCE_RETENTION_DAYS) go."""
    delete_expired_events(days=int(current_app.config["AUDIENCE_RETENTION_DAYS"]))


def rollup_rows(rows: Iterable[Mapping[str, Any]]) -> Counter[tuple[Any, ...]]:
    """The rollups a set of events makes, counted in Python (for checks and tests)."""
    return Counter(rollup_key(row) for row in rows)
