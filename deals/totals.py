"""THE aggregation: a fair's running totals over its active intents.

Every writer touches rows in one order: its intent (and idempotency key), then its project's
and buyer's member rows, then the fair's FairTotals row, then breakdown rows. Breakdown rows
are only ever written by the holder of the FairTotals row lock, and any two writers that want
the same row want it after everything they already hold in that order, so they can queue but
never deadlock. The FairTotals row is locked by the UPDATE that moves it (PostgreSQL keeps the
lock to the end of the transaction; SQLite's first write takes the database's write lock), and
every update is relative (``x = x + d``), so no update is lost.

Taking the FairTotals lock late, after the intent is written, keeps the part of the
transaction that all writers of a fair pass one at a time short: one UPDATE, one breakdown
UPSERT, one small read, and the commit. The locked section holds no INSERT of an intent, so
two requests with one idempotency key meet on the key's unique index, not on this lock.

Only deals.service calls the writers; everyone else reads with ``read_totals``. The writers
also return the totals after the change, for the broadcast built inside the transaction:
each process keeps the breakdowns as of the last change it saw and reads only the rows
changed since (every breakdown row carries the ``seq`` of its last change), so a totals
payload costs a few rows, not a scan of the fair's breakdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import bindparam, select, text, update

from deals.models import (
    Dimension,
    FairTotals,
    FairTotalsBreakdown,
    FairTotalsMember,
    Intent,
)
from fair.extensions import db
from fair.money import format_yuan
from livehalls.broadcast import BreakdownEntry, TotalsPayload

Breakdowns = dict[Dimension, dict[str, BreakdownEntry]]
SNAPSHOTS_KEY = "deals.totals_snapshots"
_SCALARS = (FairTotals.seq, FairTotals.amount_fen, FairTotals.deal_count,
            FairTotals.project_count, FairTotals.buyer_count)
_BREAKDOWN_ROW = (FairTotalsBreakdown.dimension, FairTotalsBreakdown.key,
                  FairTotalsBreakdown.amount_fen, FairTotalsBreakdown.deal_count)


def apply_intent(intent: Intent) -> TotalsPayload:
    """Add a newly recorded intent to its fair's totals; return the totals after it."""
    return _move(intent, +1)


def revert_intent(intent: Intent) -> TotalsPayload:
    """Take a withdrawn intent out of its fair's totals; return the totals after it."""
    return _move(intent, -1)


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


def read_totals(fair_id: int) -> TotalsPayload:
    """The fair's totals and breakdowns, read in one statement (one snapshot), no intents."""
    rows = db.session.execute(
        select(*_SCALARS, *_BREAKDOWN_ROW)
        .outerjoin(FairTotalsBreakdown, FairTotalsBreakdown.fair_id == FairTotals.fair_id)
        .where(FairTotals.fair_id == fair_id)
    ).all()
    breakdowns: Breakdowns = {dimension: {} for dimension in Dimension}
    for *_, dimension, key, amount_fen, deal_count in rows:
        if dimension is not None:
            _put(breakdowns, dimension, key, amount_fen, deal_count)
    return _payload(fair_id, tuple(rows[0][:5]) if rows else (0, 0, 0, 0, 0), breakdowns)


# --- Writing ------------------------------------------------------------------------------


# Every intent runs the statements below, so they are built once, here, from bound parameters
# and table columns: SQLAlchemy then takes each compiled form from its cache and skips the
# ORM. The UPSERTs are plain SQL because SQLAlchemy cannot cache its ON CONFLICT constructs
# (it would compile them for every intent); PostgreSQL and SQLite (3.35 and later) read the
# same INSERT ... ON CONFLICT ... RETURNING.

_TOTALS = FairTotals.__table__.c
_BREAKDOWN = FairTotalsBreakdown.__table__.c
_MEMBERS = FairTotalsMember.__table__.c

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
    .returning(_TOTALS.seq, _TOTALS.amount_fen, _TOTALS.deal_count, _TOTALS.project_count,
               _TOTALS.buyer_count)
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
    values = ", ".join(f"(:fair, :dimension{n}, :key{n}, :amount, 1, :seq)" for n in range(rows))
    return (
        "INSERT INTO fair_totals_breakdown"  # noqa: S608 - placeholders only
        " (fair_id, dimension, key, amount_fen, deal_count, seq)"
        f" VALUES {values} ON CONFLICT (fair_id, dimension, key) DO UPDATE SET"
        " amount_fen = fair_totals_breakdown.amount_fen + excluded.amount_fen,"
        " deal_count = fair_totals_breakdown.deal_count + 1, seq = excluded.seq"
        " RETURNING dimension, key, amount_fen, deal_count"
    )


def _take_from_breakdown(rows: int) -> str:
    keys = " OR ".join(f"(dimension = :dimension{n} AND key = :key{n})" for n in range(rows))
    return (
        "UPDATE fair_totals_breakdown"  # noqa: S608 - placeholders only
        " SET amount_fen = amount_fen - :amount,"
        f" deal_count = deal_count - 1, seq = :seq WHERE fair_id = :fair AND ({keys})"
        " RETURNING dimension, key, amount_fen, deal_count"
    )


def _and_changed_since(change: str) -> str:
    # PostgreSQL runs both in one statement, and so one round trip while the lock is held.
    # The SELECT sees the data as the statement starts: everything committed before this
    # transaction took the lock, and not the change beside it, which comes back marked own.
    return (
        f"WITH changed AS ({change})"  # noqa: S608 - our own statements only
        " SELECT true AS own, * FROM changed UNION ALL"
        " SELECT false, dimension, key, amount_fen, deal_count FROM fair_totals_breakdown"
        " WHERE fair_id = :fair AND seq > :since"
    )


#: The statements that change the breakdown rows, by step (+1 adds an intent, -1 takes one
#: away) and by the number of rows an intent counts in: four, or five when signed in a hall.
_CHANGE = {
    (step, rows): text(make(rows))
    for step, make in ((1, _add_to_breakdown), (-1, _take_from_breakdown)) for rows in (4, 5)
}
_CHANGE_AND_SINCE = {
    (step, rows): text(_and_changed_since(make(rows)))
    for step, make in ((1, _add_to_breakdown), (-1, _take_from_breakdown)) for rows in (4, 5)
}
_CHANGED_SINCE = (
    select(_BREAKDOWN.dimension, _BREAKDOWN.key, _BREAKDOWN.amount_fen, _BREAKDOWN.deal_count)
    .where(_BREAKDOWN.fair_id == bindparam("fair"), _BREAKDOWN.seq > bindparam("since"))
)

BreakdownRow = tuple[str, str, int, int]


def _move(intent: Intent, step: int) -> TotalsPayload:
    fair = intent.fair_id
    members = {"fair": fair, "project": intent.project_id, "buyer": intent.buyer_id}
    counts = dict(db.session.execute(
        _COUNT_MEMBERS if step > 0 else _UNCOUNT_MEMBERS, members).tuples().all())
    # A project or buyer crossed zero when its count became 1 (adding) or 0 (taking away).
    crossing = 1 if step > 0 else 0
    moves = {"fair": fair, "amount": step * intent.amount_fen, "deals": step,
             "projects": step * (counts["project"] == crossing),
             "buyers": step * (counts["buyer"] == crossing)}
    moved = db.session.execute(_MOVE_TOTALS, moves).first()
    if moved is None:
        # The fair's first intent. Two first writers may race to create the row: the loser's
        # insert waits for the winner and then does nothing, and both move the one row.
        db.session.execute(_CREATE_TOTALS, {"fair": fair})
        moved = db.session.execute(_MOVE_TOTALS, moves).one()
    scalars = tuple(moved)
    seq = scalars[0]
    snapshot = _snapshot(fair, seq)
    keys = breakdown_keys(intent)
    parameters: dict[str, object] = {"fair": fair, "amount": intent.amount_fen, "seq": seq,
                                     "since": snapshot.seq}
    for number, (dimension, key) in enumerate(keys.items()):
        parameters[f"dimension{number}"] = dimension.value
        parameters[f"key{number}"] = key
    earlier: list[BreakdownRow]
    own: list[BreakdownRow]
    if db.session.get_bind().dialect.name == "postgresql":
        rows = db.session.execute(_CHANGE_AND_SINCE[step, len(keys)], parameters).all()
        earlier = [tuple(row[1:]) for row in rows if not row[0]]
        own = [tuple(row[1:]) for row in rows if row[0]]
    else:
        earlier = [tuple(row) for row in db.session.execute(_CHANGED_SINCE, parameters)]
        own = [tuple(row) for row in db.session.execute(_CHANGE[step, len(keys)], parameters)]
    for row in earlier:
        _put(snapshot.breakdowns, *row)
    snapshot.seq = seq - 1
    after = {dimension: dict(entries) for dimension, entries in snapshot.breakdowns.items()}
    for row in own:
        _put(after, *row)
    return _payload(fair, scalars, after)


# --- This process's breakdowns as of the last change it saw -----------------------------------


@dataclass
class _Snapshot:
    seq: int
    breakdowns: Breakdowns


def _snapshot(fair_id: int, seq: int) -> _Snapshot:
    """This process's breakdowns of the fair as of the last change it saw before `seq`.

    The caller holds the FairTotals row lock for change `seq`: every change up to seq - 1 is
    committed and none after it exists, so the rows whose seq is above the snapshot's bring
    it to seq - 1. The snapshot never holds a change that could still roll back.
    """
    snapshots: dict[int, _Snapshot] = current_app.extensions.setdefault(SNAPSHOTS_KEY, {})
    snapshot = snapshots.get(fair_id)
    if snapshot is None or snapshot.seq >= seq:
        # None yet, or a rolled-back change had taken this seq: start from nothing.
        snapshot = snapshots[fair_id] = _Snapshot(
            seq=0, breakdowns={dimension: {} for dimension in Dimension})
    return snapshot


# --- Shaping ----------------------------------------------------------------------------------


def _put(breakdowns: Breakdowns, dimension: Dimension | str, key: str, amount_fen: int,
         deal_count: int) -> None:
    # A row stays behind when its last intent is withdrawn; it sums over no intent.
    dimension = Dimension(dimension)
    if deal_count > 0:
        breakdowns[dimension][key] = {"amount": format_yuan(amount_fen), "deal_count": deal_count}
    else:
        breakdowns[dimension].pop(key, None)


def _payload(fair_id: int, scalars: Sequence[int], breakdowns: Breakdowns) -> TotalsPayload:
    seq, amount_fen, deal_count, project_count, buyer_count = scalars
    return {
        "seq": seq,
        "fair_id": fair_id,
        "amount": format_yuan(amount_fen),
        "deal_count": deal_count,
        "project_count": project_count,
        "buyer_count": buyer_count,
        "by_buyer_province": dict(sorted(breakdowns[Dimension.buyer_province].items())),
        "by_exhibitor_province": dict(sorted(breakdowns[Dimension.exhibitor_province].items())),
        "by_category": dict(sorted(breakdowns[Dimension.category].items())),
        "by_hall": dict(sorted(breakdowns[Dimension.hall].items())),
        "by_exhibitor": dict(sorted(breakdowns[Dimension.exhibitor].items())),
    }
