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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from deals.models import (
    Dimension,
    FairTotals,
    FairTotalsBreakdown,
    FairTotalsMember,
    Intent,
    MemberKind,
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


def _move(intent: Intent, step: int) -> TotalsPayload:
    projects, buyers = _count_members(intent, step)
    scalars = _move_totals(intent, step, projects=projects, buyers=buyers)
    seq = scalars[0]
    before = _breakdowns_before(intent.fair_id, seq)
    keys = breakdown_keys(intent)
    if step > 0:
        changed = db.session.execute(_breakdown_upsert(), [
            {"fair_id": intent.fair_id, "dimension": dimension, "key": key,
             "amount_fen": intent.amount_fen, "seq": seq}
            for dimension, key in keys.items()
        ])
    else:
        changed = db.session.execute(
            update(FairTotalsBreakdown)
            .where(FairTotalsBreakdown.fair_id == intent.fair_id,
                   tuple_(FairTotalsBreakdown.dimension, FairTotalsBreakdown.key).in_(
                       keys.items()))
            .values(amount_fen=FairTotalsBreakdown.amount_fen - intent.amount_fen,
                    deal_count=FairTotalsBreakdown.deal_count - 1, seq=seq)
            .returning(*_BREAKDOWN_ROW)
            .execution_options(synchronize_session=False)
        )
    after = {dimension: dict(entries) for dimension, entries in before.items()}
    for row in changed:
        _put(after, *row)
    return _payload(intent.fair_id, scalars, after)


def _count_members(intent: Intent, step: int) -> tuple[int, int]:
    """Move the intent's project and buyer counters; say which one crossed zero (as ±1)."""
    members = {MemberKind.project: intent.project_id, MemberKind.buyer: intent.buyer_id}
    if step > 0:
        rows = db.session.execute(_member_upsert(), [
            {"fair_id": intent.fair_id, "member": member, "member_id": member_id}
            for member, member_id in members.items()
        ])
        crossing = 1
    else:
        rows = db.session.execute(
            update(FairTotalsMember)
            .where(FairTotalsMember.fair_id == intent.fair_id,
                   tuple_(FairTotalsMember.member, FairTotalsMember.member_id).in_(
                       members.items()))
            .values(intent_count=FairTotalsMember.intent_count - 1)
            .returning(FairTotalsMember.member, FairTotalsMember.intent_count)
            .execution_options(synchronize_session=False)
        )
        crossing = 0
    counts = {member: count for member, count in rows}
    return (step * (counts[MemberKind.project] == crossing),
            step * (counts[MemberKind.buyer] == crossing))


def _move_totals(intent: Intent, step: int, *, projects: int, buyers: int
                 ) -> tuple[int, int, int, int, int]:
    """Move the FairTotals row (locking it) and return its new seq, amount and counts."""
    statement = (
        update(FairTotals)
        .where(FairTotals.fair_id == intent.fair_id)
        .values(
            seq=FairTotals.seq + 1,
            amount_fen=FairTotals.amount_fen + step * intent.amount_fen,
            deal_count=FairTotals.deal_count + step,
            project_count=FairTotals.project_count + projects,
            buyer_count=FairTotals.buyer_count + buyers,
        )
        .returning(*_SCALARS)
        .execution_options(synchronize_session=False)
    )
    moved = db.session.execute(statement).first()
    if moved is None:
        # The fair's first intent. Two first writers may race to create the row: the loser's
        # insert waits for the winner and then does nothing, and both move the one row.
        db.session.execute(
            _insert(FairTotals)
            .values(fair_id=intent.fair_id, seq=0, amount_fen=0, deal_count=0, project_count=0,
                    buyer_count=0)
            .on_conflict_do_nothing(index_elements=["fair_id"])
        )
        moved = db.session.execute(statement).one()
    seq, amount_fen, deal_count, project_count, buyer_count = moved
    return seq, amount_fen, deal_count, project_count, buyer_count


# The statements of every intent are built from bound parameters only, so that SQLAlchemy
# compiles each once and then finds it in its cache; each runs as one statement for its rows.


def _member_upsert() -> postgresql.Insert | sqlite.Insert:
    statement = _insert(FairTotalsMember).values(
        fair_id=bindparam("fair_id"), member=bindparam("member"),
        member_id=bindparam("member_id"), intent_count=1,
    )
    return statement.on_conflict_do_update(
        index_elements=["fair_id", "member", "member_id"],
        set_={"intent_count": FairTotalsMember.intent_count + 1},
    ).returning(FairTotalsMember.member, FairTotalsMember.intent_count)


def _breakdown_upsert() -> postgresql.Insert | sqlite.Insert:
    statement = _insert(FairTotalsBreakdown).values(
        fair_id=bindparam("fair_id"), dimension=bindparam("dimension"), key=bindparam("key"),
        amount_fen=bindparam("amount_fen"), deal_count=1, seq=bindparam("seq"),
    )
    return statement.on_conflict_do_update(
        index_elements=["fair_id", "dimension", "key"],
        set_={
            "amount_fen": FairTotalsBreakdown.amount_fen + statement.excluded.amount_fen,
            "deal_count": FairTotalsBreakdown.deal_count + 1,
            "seq": statement.excluded.seq,
        },
    ).returning(*_BREAKDOWN_ROW)


# --- This process's breakdowns as of the last change it saw -----------------------------------


@dataclass
class _Snapshot:
    seq: int
    breakdowns: Breakdowns


def _breakdowns_before(fair_id: int, seq: int) -> Breakdowns:
    """The fair's breakdowns just before change `seq`, which this transaction is making.

    Called with the FairTotals row locked: every change up to seq - 1 is committed, and none
    after it exists, so reading the rows changed since the last snapshot brings it to seq - 1.
    The snapshot never holds this transaction's own change, which could still roll back.
    """
    snapshots: dict[int, _Snapshot] = current_app.extensions.setdefault(SNAPSHOTS_KEY, {})
    snapshot = snapshots.get(fair_id)
    if snapshot is None or snapshot.seq >= seq:
        # None yet, or a rolled-back change had taken this seq: start from nothing.
        snapshot = _Snapshot(seq=0, breakdowns={dimension: {} for dimension in Dimension})
    rows = db.session.execute(
        select(*_BREAKDOWN_ROW)
        .where(FairTotalsBreakdown.fair_id == fair_id, FairTotalsBreakdown.seq > snapshot.seq)
    )
    for row in rows:
        _put(snapshot.breakdowns, *row)
    snapshot.seq = seq - 1
    snapshots[fair_id] = snapshot
    return snapshot.breakdowns


# --- Shaping ----------------------------------------------------------------------------------


def _put(breakdowns: Breakdowns, dimension: Dimension, key: str, amount_fen: int,
         deal_count: int) -> None:
    # A row stays behind when its last intent is withdrawn; it sums over no intent.
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


def _insert(
    table: type[FairTotals | FairTotalsBreakdown | FairTotalsMember],
) -> postgresql.Insert | sqlite.Insert:
    """INSERT with ON CONFLICT for the database in use (PostgreSQL or SQLite)."""
    dialects: dict[str, Callable[..., postgresql.Insert | sqlite.Insert]] = {
        "postgresql": postgresql.insert, "sqlite": sqlite.insert,
    }
    return dialects[db.session.get_bind().dialect.name](table)
