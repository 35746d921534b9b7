"""THE aggregation: a fair's running totals over its active intents.

Every writer takes the fair's FairTotals row lock first (``lock``), before it touches an intent,
an idempotency key, a breakdown row or a member row. With one lock order for everything, two
writers of a fair can only queue, never deadlock, and the read-modify-write below cannot lose
an update. On SQLite, which has no row locks, the first write of a transaction takes the
database's write lock instead; the updates are relative (``x = x + d``) so they stay exact there
too. Only deals.service calls the writers; everyone else reads with ``read_totals``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import select, tuple_, update
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


def lock(fair_id: int) -> None:
    """Hold the fair's totals row until the transaction ends, creating the row if need be."""
    locked = db.session.execute(
        select(FairTotals.fair_id).where(FairTotals.fair_id == fair_id).with_for_update()
    ).first()
    if locked is None:
        # Two first writers may race to create the row: the loser's insert waits for the
        # winner and then does nothing, and both go on to lock the one row.
        db.session.execute(
            _insert(FairTotals)
            .values(fair_id=fair_id, seq=0, amount_fen=0, deal_count=0, project_count=0,
                    buyer_count=0)
            .on_conflict_do_nothing(index_elements=["fair_id"])
        )
        db.session.execute(
            select(FairTotals.fair_id).where(FairTotals.fair_id == fair_id).with_for_update()
        )


def apply_intent(intent: Intent) -> TotalsPayload:
    """Add a newly recorded intent to its fair's totals; return the totals after it."""
    lock(intent.fair_id)
    new_projects, new_buyers = _count_members(intent, +1)
    _move_totals(intent, +1, projects=new_projects, buyers=new_buyers)
    db.session.execute(
        _insert(FairTotalsBreakdown)
        .values([
            {"fair_id": intent.fair_id, "dimension": dimension, "key": key,
             "amount_fen": intent.amount_fen, "deal_count": 1}
            for dimension, key in breakdown_keys(intent).items()
        ])
        .on_conflict_do_update(
            index_elements=["fair_id", "dimension", "key"],
            set_={
                "amount_fen": FairTotalsBreakdown.amount_fen + intent.amount_fen,
                "deal_count": FairTotalsBreakdown.deal_count + 1,
            },
        )
    )
    return read_totals(intent.fair_id)


def revert_intent(intent: Intent) -> TotalsPayload:
    """Take a withdrawn intent out of its fair's totals; return the totals after it."""
    lock(intent.fair_id)
    gone_projects, gone_buyers = _count_members(intent, -1)
    _move_totals(intent, -1, projects=-gone_projects, buyers=-gone_buyers)
    keys = breakdown_keys(intent)
    db.session.execute(
        update(FairTotalsBreakdown)
        .where(
            FairTotalsBreakdown.fair_id == intent.fair_id,
            tuple_(FairTotalsBreakdown.dimension, FairTotalsBreakdown.key).in_(keys.items()),
        )
        .values(
            amount_fen=FairTotalsBreakdown.amount_fen - intent.amount_fen,
            deal_count=FairTotalsBreakdown.deal_count - 1,
        )
        .execution_options(synchronize_session=False)
    )
    return read_totals(intent.fair_id)


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
        select(
            FairTotals.seq, FairTotals.amount_fen, FairTotals.deal_count,
            FairTotals.project_count, FairTotals.buyer_count, FairTotalsBreakdown.dimension,
            FairTotalsBreakdown.key, FairTotalsBreakdown.amount_fen,
            FairTotalsBreakdown.deal_count,
        )
        .outerjoin(FairTotalsBreakdown, FairTotalsBreakdown.fair_id == FairTotals.fair_id)
        .where(FairTotals.fair_id == fair_id)
    ).all()
    breakdowns: dict[Dimension, dict[str, BreakdownEntry]] = {each: {} for each in Dimension}
    for *_, dimension, key, amount_fen, deal_count in rows:
        # A row stays behind when its last intent is withdrawn; it sums over no intent.
        if dimension is not None and deal_count > 0:
            breakdowns[dimension][key] = {"amount": format_yuan(amount_fen),
                                          "deal_count": deal_count}
    seq, amount_fen, deal_count, project_count, buyer_count = rows[0][:5] if rows else (0,) * 5
    return {
        "seq": seq,
        "fair_id": fair_id,
        "amount": format_yuan(amount_fen),
        "deal_count": deal_count,
        "project_count": project_count,
        "buyer_count": buyer_count,
        "by_buyer_province": _sorted(breakdowns[Dimension.buyer_province]),
        "by_exhibitor_province": _sorted(breakdowns[Dimension.exhibitor_province]),
        "by_category": _sorted(breakdowns[Dimension.category]),
        "by_hall": _sorted(breakdowns[Dimension.hall]),
        "by_exhibitor": _sorted(breakdowns[Dimension.exhibitor]),
    }


def _sorted(breakdown: Mapping[str, BreakdownEntry]) -> dict[str, BreakdownEntry]:
    return dict(sorted(breakdown.items()))


def _count_members(intent: Intent, step: int) -> tuple[int, int]:
    """Move the intent's project and buyer counters; say which crossed zero (1) or not (0)."""
    members = {MemberKind.project: intent.project_id, MemberKind.buyer: intent.buyer_id}
    if step > 0:
        statement = (
            _insert(FairTotalsMember)
            .values([
                {"fair_id": intent.fair_id, "member": member, "member_id": member_id,
                 "intent_count": 1}
                for member, member_id in members.items()
            ])
            .on_conflict_do_update(
                index_elements=["fair_id", "member", "member_id"],
                set_={"intent_count": FairTotalsMember.intent_count + 1},
            )
        )
        crossing = 1
    else:
        statement = (
            update(FairTotalsMember)
            .where(
                FairTotalsMember.fair_id == intent.fair_id,
                tuple_(FairTotalsMember.member, FairTotalsMember.member_id).in_(members.items()),
            )
            .values(intent_count=FairTotalsMember.intent_count - 1)
            .execution_options(synchronize_session=False)
        )
        crossing = 0
    counts = {
        member: count
        for member, count in db.session.execute(
            statement.returning(FairTotalsMember.member, FairTotalsMember.intent_count)
        )
    }
    return (int(counts[MemberKind.project] == crossing), int(counts[MemberKind.buyer] == crossing))


def _move_totals(intent: Intent, step: int, *, projects: int, buyers: int) -> None:
    db.session.execute(
        update(FairTotals)
        .where(FairTotals.fair_id == intent.fair_id)
        .values(
            seq=FairTotals.seq + 1,
            amount_fen=FairTotals.amount_fen + step * intent.amount_fen,
            deal_count=FairTotals.deal_count + step,
            project_count=FairTotals.project_count + projects,
            buyer_count=FairTotals.buyer_count + buyers,
        )
        .execution_options(synchronize_session=False)
    )


def _insert(
    table: type[FairTotals | FairTotalsBreakdown | FairTotalsMember],
) -> postgresql.Insert | sqlite.Insert:
    """INSERT with ON CONFLICT for the database in use (PostgreSQL or SQLite)."""
    dialects: dict[str, Callable[..., postgresql.Insert | sqlite.Insert]] = {
        "postgresql": postgresql.insert, "sqlite": sqlite.insert,
    }
    return dialects[db.session.get_bind().dialect.name](table)
