"""THE aggregation: a fair's running totals over its active intents.

Every writer touches rows in one order: its intent (and idempotency key), then its project's
and buyer's member rows, then the fair's FairTotals row, then breakdown rows. Breakdown rows
are only ever written by the holder of the FairTotals row lock, and any two writers that want
the same row want it after everything they already hold in that order, so they can queue but
never deadlock. The FairTotals row is locked by the UPDATE that moves it (PostgreSQL keeps the
lock to the end of the transaction; SQLite's first write takes the database's write lock), and
every update is relative (``x = x + d``), so no update is lost.

Taking the FairTotals lock late, after the intent is written, keeps the part of the
transaction that all writers of a fair pass one at a time short: on PostgreSQL one call of
fair_totals_move (migration 0005: the totals UPDATE, the breakdown UPSERT), then the commit;
on SQLite the same statements one by one. A new intent goes further on PostgreSQL:
``write_intent`` is one call of fair_sign_intent (migration 0006), which reads the project,
inserts the intent and its key, checks the project's status and the fair's, counts the members
and calls fair_totals_move, and is a transaction of its own: the lock on the totals is released
as the call ends, with no round trip to the application in between. The locked section holds
no INSERT of an intent, so two requests with one idempotency key meet on the key's unique
index, not on this lock. The totals that viewers see are read after the commit
(``read_totals``, by livehalls.broadcast once per window), not built while writers wait.

Only deals.service (and deals.payments, for the secured figures) calls the writers; everyone
else reads with ``read_totals``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ScalarSelect, bindparam, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from deals.models import (
    Dimension,
    FairTotals,
    FairTotalsBreakdown,
    IdempotencyKey,
    Intent,
    IntentStatus,
)
from exhibitors.models import Project, ProjectStatus
from fair.database import execute_as_own_transaction
from fair.extensions import db
from fair.models import Fair, FairStatus
from livehalls.models import Hall
from livehalls.schemas import TotalsSchema

#: A breakdown: key -> (amount in fen, number of intents).
Breakdown = dict[str, tuple[int, int]]
Breakdowns = dict[Dimension, Breakdown]
#: A TotalsSchema dump: the body of GET /totals and of the `totals` message.
TotalsMessage = dict[str, Any]
_SCALARS = (FairTotals.seq, FairTotals.amount_fen, FairTotals.deal_count,
            FairTotals.project_count, FairTotals.buyer_count, FairTotals.secured_amount_fen,
            FairTotals.secured_count)
_BREAKDOWN_ROW = (FairTotalsBreakdown.dimension, FairTotalsBreakdown.key,
                  FairTotalsBreakdown.amount_fen, FairTotalsBreakdown.deal_count)


@dataclass(frozen=True)
class Signing:
    """A buyer's request to sign, as the service checked it: who, which project, how much."""

    project_id: int
    buyer_id: int
    buyer_organisation_id: int
    buyer_province: str
    hall_id: int | None
    amount_fen: int
    note: str
    created_at: dt.datetime
    idempotency_key: str
    fingerprint: str


@dataclass(frozen=True)
class Signed:
    """The new intent as written: its id, its column values (with what it copied from its
    project, read while signing), and its project's title."""

    intent_id: int
    columns: dict[str, Any]
    project_title: str


class Refused(Exception):
    """The database would not sign: ``reason`` is one of REFUSALS; nothing was written."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: Why signing is refused, in the order checked: before anything is written, the project must
#: exist and the hall be its fair's; after the intent and its key are written (so that a retry
#: of an earlier request answers that request's intent instead), the project must be published
#: and the fair open.
REFUSALS = ("no_project", "hall_not_in_fair", "project_not_published", "fair_not_open")
#: The SQLSTATE of fair_sign_intent's refusals (migration 0006); the message is the reason.
REFUSED_SQLSTATE = "FA001"


def write_intent(signing: Signing) -> Signed:
    """Insert an intent and its idempotency key, then add the intent to its fair's totals.

    The key's unique index refuses a second request with the same key (IntegrityError) before
    the project's status and the fair's are checked (Refused). On PostgreSQL the whole write is
    one call of fair_sign_intent, which is its own transaction when the session has read
    nothing yet (fair.database.execute_as_own_transaction).
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return _write_step_by_step(signing)
    try:
        row = execute_as_own_transaction(_SIGN_IN_ONE_CALL, asdict(signing)).one()
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != REFUSED_SQLSTATE:
            raise
        reason = error.orig.diag.message_primary  # type: ignore[union-attr]
        raise Refused(reason) from error
    intent_id, fair_id, exhibitor_id, exhibitor_province, category, title = row
    return Signed(intent_id, _intent_columns(signing, fair_id, exhibitor_id, exhibitor_province,
                                             category), title)


def _write_step_by_step(signing: Signing) -> Signed:
    """What fair_sign_intent does on PostgreSQL, one statement at a time (for SQLite)."""
    project = db.session.execute(_PROJECT_FACTS, {"project": signing.project_id}).first()
    if project is None:
        raise Refused("no_project")
    if signing.hall_id is not None and db.session.scalar(
        _HALL_FAIR, {"hall": signing.hall_id}
    ) != project.fair_id:
        raise Refused("hall_not_in_fair")
    columns = _intent_columns(signing, project.fair_id, project.exhibitor_id, project.province,
                              project.category)
    intent_id = db.session.execute(_INSERT_INTENT, columns).scalar_one()
    db.session.execute(_INSERT_KEY, {"buyer": signing.buyer_id, "key": signing.idempotency_key,
                                     "fingerprint": signing.fingerprint, "intent": intent_id})
    if project.status is not ProjectStatus.published:
        raise Refused("project_not_published")
    if db.session.scalar(_FAIR_STATUS, {"fair": project.fair_id}) is not FairStatus.open:
        raise Refused("fair_not_open")
    _move(Intent(**columns), +1)
    return Signed(intent_id, columns, project.title)


def _intent_columns(signing: Signing, fair_id: int, exhibitor_id: int, exhibitor_province: str,
                    category: str) -> dict[str, Any]:
    """A new intent's column values: the request's, and what it copies from its project."""
    return {
        "fair_id": fair_id, "project_id": signing.project_id,
        "buyer_id": signing.buyer_id, "buyer_organisation_id": signing.buyer_organisation_id,
        "buyer_province": signing.buyer_province, "exhibitor_id": exhibitor_id,
        "exhibitor_province": exhibitor_province, "category": category,
        "hall_id": signing.hall_id, "amount_fen": signing.amount_fen, "note": signing.note,
        "status": IntentStatus.active, "created_at": signing.created_at, "secured": False,
        "withdrawn_at": None,
    }


def revert_intent(intent: Intent) -> None:
    """Take a withdrawn intent out of its fair's totals."""
    _move(intent, -1)


def breakdown_keys(intent: Intent) -> dict[Dimension, str]:
    """The breakdown rows an intent counts in; one signed outside a hall is in no hall's."""
    keys = {
        Dimension.buyer_province: intent.buyer_province,
        Dimension.exhibitor_province: intent.exhibitor_province,
        Dimension.category: intent.category,
        Dimension.exhibitor: str(intent.exhibitor_id),
    }
    if intent.hall_id is not None:
        keys[Dimension.hall] = str(intent.hall_id)
    return keys


@dataclass(frozen=True)
class Totals:
    """A fair's totals as stored, amounts in fen; TotalsSchema dumps them."""

    fair_id: int
    seq: int
    amount_fen: int
    deal_count: int
    project_count: int
    buyer_count: int
    #: Active intents with a paid deposit (``Intent.secured``).
    secured_amount_fen: int
    secured_count: int
    #: The visits (人次) of the fair's halls, as livehalls.presence last saved them.
    visits: int
    by_buyer_province: Breakdown
    by_exhibitor_province: Breakdown
    by_category: Breakdown
    by_hall: Breakdown
    by_exhibitor: Breakdown


_TOTALS_SCHEMA = TotalsSchema()


def read_totals(fair_id: int) -> TotalsMessage:
    """The fair's totals as GET /totals and the `totals` message carry them (TotalsSchema)."""
    dumped: TotalsMessage = _TOTALS_SCHEMA.dump(read_figures(fair_id))
    return dumped


def read_figures(fair_id: int) -> Totals:
    """The fair's totals and breakdowns, read in one statement (one snapshot), no intents."""
    rows = db.session.execute(
        select(*_SCALARS, _visits(fair_id), *_BREAKDOWN_ROW)
        .outerjoin(FairTotalsBreakdown, FairTotalsBreakdown.fair_id == FairTotals.fair_id)
        .where(FairTotals.fair_id == fair_id)
    ).all()
    breakdowns: Breakdowns = {dimension: {} for dimension in Dimension}
    for *_, dimension, key, amount_fen, deal_count in rows:
        if dimension is not None:
            _put(breakdowns, dimension, key, amount_fen, deal_count)
    if rows:
        scalars = tuple(rows[0][:len(_SCALARS) + 1])
    else:  # no intent yet
        scalars = (0,) * len(_SCALARS) + (db.session.scalar(select(_visits(fair_id))),)
    return _payload(fair_id, scalars, breakdowns)


def read_seqs(fair_ids: Collection[int]) -> dict[int, int]:
    """The committed seq of each of the fairs, in one statement; a fair without intents has 0."""
    rows = db.session.execute(
        select(FairTotals.fair_id, FairTotals.seq).where(FairTotals.fair_id.in_(fair_ids))
    ).tuples()
    return {fair_id: 0 for fair_id in fair_ids} | dict(rows.all())


def move_secured(intent: Intent, step: int, *, own_change: bool = True) -> None:
    """Count an active intent into (+1) or out of (-1) its fair's secured figures.

    Its own change of the totals (seq + 1) when a deposit was paid or given back; part of
    another (no seq of its own) when the intent is withdrawn. One statement beside the signing
    functions, which stay as they are: securing is rare next to signing. The caller holds the
    intent's row lock, taken before the totals' as every writer does.
    """
    db.session.execute(_MOVE_SECURED, {"fair": intent.fair_id, "seq": int(own_change),
                                       "amount": step * intent.amount_fen, "count": step})


def _visits(fair_id: int) -> ScalarSelect[int]:
    # A few rows per fair (its halls): summed in the same statement as the totals.
    return (select(func.coalesce(func.sum(Hall.visits), 0)).where(Hall.fair_id == fair_id)
            .scalar_subquery())


# --- Writing ------------------------------------------------------------------------------


# Every intent runs the statements below, so they are built once, here, from bound parameters
# and table columns: SQLAlchemy then takes each compiled form from its cache and skips the
# ORM. The UPSERTs are plain SQL because SQLAlchemy cannot cache its ON CONFLICT constructs
# (it would compile them for every intent); PostgreSQL and SQLite (3.35 and later) read the
# same INSERT ... ON CONFLICT ... RETURNING.

_TOTALS = FairTotals.__table__.c

_MOVE_TOTALS = (
    update(FairTotals.__table__)
    .where(_TOTALS.fair_id == bindparam("fair"))
    .values(
        seq=_TOTALS.seq + 1,
        amount_fen=_TOTALS.amount_fen + bindparam("amount"),
        deal_count=_TOTALS.deal_count + bindparam("deals"),
        project_count=_TOTALS.project_count + bindparam("projects"),
        buyer_count=_TOTALS.buyer_count + bindparam("buyers"),
    )
    .returning(_TOTALS.seq)
)
_MOVE_SECURED = (
    update(FairTotals.__table__)
    .where(_TOTALS.fair_id == bindparam("fair"))
    .values(
        seq=_TOTALS.seq + bindparam("seq"),
        secured_amount_fen=_TOTALS.secured_amount_fen + bindparam("amount"),
        secured_count=_TOTALS.secured_count + bindparam("count"),
    )
)
_CREATE_TOTALS = text(
    "INSERT INTO fair_totals (fair_id, seq, amount_fen, deal_count, project_count, buyer_count)"
    " VALUES (:fair, 0, 0, 0, 0, 0) ON CONFLICT (fair_id) DO NOTHING"
)
_COUNT_MEMBERS = text(
    "INSERT INTO fair_totals_members (fair_id, member, member_id, intent_count)"
    " VALUES (:fair, 'project', :project, 1), (:fair, 'buyer', :buyer, 1)"
    " ON CONFLICT (fair_id, member, member_id)"
    " DO UPDATE SET intent_count = fair_totals_members.intent_count + 1"
    " RETURNING member, intent_count"
)
_UNCOUNT_MEMBERS = text(
    "UPDATE fair_totals_members SET intent_count = intent_count - 1"
    " WHERE fair_id = :fair AND ((member = 'project' AND member_id = :project)"
    " OR (member = 'buyer' AND member_id = :buyer))"
    " RETURNING member, intent_count"
)


def _add_to_breakdown(rows: int) -> str:
    # Only placeholders are joined in; every value is a bound parameter.
    values = ", ".join(f"(:fair, :dimension{n}, :key{n}, :amount, 1)" for n in range(rows))
    return (
        "INSERT INTO fair_totals_breakdown"  # noqa: S608 - placeholders only
        " (fair_id, dimension, key, amount_fen, deal_count)"
        f" VALUES {values} ON CONFLICT (fair_id, dimension, key) DO UPDATE SET"
        " amount_fen = fair_totals_breakdown.amount_fen + excluded.amount_fen,"
        " deal_count = fair_totals_breakdown.deal_count + 1"
    )


def _take_from_breakdown(rows: int) -> str:
    keys = " OR ".join(f"(dimension = :dimension{n} AND key = :key{n})" for n in range(rows))
    return (
        "UPDATE fair_totals_breakdown"  # noqa: S608 - placeholders only
        " SET amount_fen = amount_fen - :amount,"
        f" deal_count = deal_count - 1 WHERE fair_id = :fair AND ({keys})"
    )


#: The statements that change the breakdown rows, by step (+1 adds an intent, -1 takes one
#: away) and by the number of rows an intent counts in: four, or five when signed in a hall.
_CHANGE = {
    (step, rows): text(make(rows))
    for step, make in ((1, _add_to_breakdown), (-1, _take_from_breakdown)) for rows in (4, 5)
}
_INSERT_INTENT = insert(Intent.__table__).returning(Intent.__table__.c.id)
_INSERT_KEY = insert(IdempotencyKey.__table__).values(
    buyer_id=bindparam("buyer"), key=bindparam("key"), fingerprint=bindparam("fingerprint"),
    intent_id=bindparam("intent"))
_FAIR_STATUS = select(Fair.__table__.c.status).where(Fair.__table__.c.id == bindparam("fair"))
_PROJECT_FACTS = select(Project.fair_id, Project.exhibitor_id, Project.province,
                        Project.category, Project.title, Project.status
                        ).where(Project.id == bindparam("project"))
_HALL_FAIR = select(Hall.fair_id).where(Hall.id == bindparam("hall"))
#: PostgreSQL: a new intent, its key, its members and the totals in one call (migration 0006).
_SIGN_IN_ONE_CALL = text(
    "SELECT intent_id, project_fair, project_exhibitor, project_province, project_category,"
    " project_title FROM fair_sign_intent(:project_id, :buyer_id, :buyer_organisation_id,"
    " :buyer_province, :hall_id, :amount_fen, :note, :created_at, :idempotency_key,"
    " :fingerprint)"
)
#: PostgreSQL: the locked part in one call; see fair_totals_move in migration 0005.
_MOVE_IN_ONE_CALL = text(
    "SELECT fair_totals_move(:fair, :amount, :deals, :projects, :buyers, :dimensions, :keys)"
)


def _breakdown_parameters(intent: Intent) -> dict[str, Any]:
    keys = breakdown_keys(intent)
    return {"dimensions": [dimension.value for dimension in keys], "keys": list(keys.values())}


def _move(intent: Intent, step: int) -> None:
    fair = intent.fair_id
    members = {"fair": fair, "project": intent.project_id, "buyer": intent.buyer_id}
    counts = dict(db.session.execute(
        _COUNT_MEMBERS if step > 0 else _UNCOUNT_MEMBERS, members).tuples().all())
    # A project or buyer crossed zero when its count became 1 (adding) or 0 (taking away).
    crossing = 1 if step > 0 else 0
    parameters: dict[str, Any] = {
        "fair": fair, "amount": step * intent.amount_fen, "deals": step,
        "projects": step * (counts["project"] == crossing),
        "buyers": step * (counts["buyer"] == crossing),
        **_breakdown_parameters(intent),
    }
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(_MOVE_IN_ONE_CALL, parameters)
    else:
        _move_step_by_step(step, parameters)


def _move_step_by_step(step: int, parameters: dict[str, Any]) -> None:
    """What fair_totals_move does on PostgreSQL, one statement at a time (for SQLite)."""
    if db.session.execute(_MOVE_TOTALS, parameters).first() is None:
        # The fair's first intent. Two first writers may race to create the row: the loser's
        # insert waits for the winner and then does nothing, and both move the one row.
        db.session.execute(_CREATE_TOTALS, parameters)
        db.session.execute(_MOVE_TOTALS, parameters).one()
    rows = len(parameters["keys"])
    change: dict[str, Any] = {"amount": abs(parameters["amount"])}
    for number, (dimension, key) in enumerate(
        zip(parameters["dimensions"], parameters["keys"], strict=True)
    ):
        change[f"dimension{number}"] = dimension
        change[f"key{number}"] = key
    db.session.execute(_CHANGE[step, rows], {**parameters, **change})


# --- Shaping ----------------------------------------------------------------------------------


def _put(breakdowns: Breakdowns, dimension: Dimension | str, key: str, amount_fen: int,
         deal_count: int) -> None:
    # A row stays behind when its last intent is withdrawn; it sums over no intent.
    dimension = Dimension(dimension)
    if deal_count > 0:
        breakdowns[dimension][key] = (amount_fen, deal_count)
    else:
        breakdowns[dimension].pop(key, None)


def _payload(fair_id: int, scalars: Sequence[int], breakdowns: Breakdowns) -> Totals:
    (seq, amount_fen, deal_count, project_count, buyer_count, secured_amount_fen, secured_count,
     visits) = scalars

    def by(dimension: Dimension) -> Breakdown:
        return dict(sorted(breakdowns[dimension].items()))

    return Totals(
        fair_id=fair_id, seq=seq, amount_fen=amount_fen, deal_count=deal_count,
        project_count=project_count, buyer_count=buyer_count,
        secured_amount_fen=secured_amount_fen, secured_count=secured_count, visits=visits,
        by_buyer_province=by(Dimension.buyer_province),
        by_exhibitor_province=by(Dimension.exhibitor_province),
        by_category=by(Dimension.category), by_hall=by(Dimension.hall),
        by_exhibitor=by(Dimension.exhibitor),
    )
