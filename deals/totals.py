"""A fair's running totals over its active intents: add an intent, take one away, read them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ScalarSelect, bindparam, func, select, text, update

from audience.models import VISIT_KINDS
from audience.models import Breakdown as AudienceBreakdown
from deals.models import Dimension, FairTotals, FairTotalsBreakdown, Intent
from fair.extensions import db
from livehalls.schemas import TotalsSchema

#: The breakdowns of the totals, the one list of them in Python: each dimension, and the
#: intent's column whose value (an id written as text) keys its rows. The totals payload names
#: each ``by_<dimension>``. On PostgreSQL fair_sign_intent (migration 0013_verify_organisations)
#: writes the rows of a new intent itself; tests/integration/test_signing_paths.py checks that
#: they are these.
BREAKDOWN: dict[Dimension, str] = {
    Dimension.buyer_province: "buyer_province",
    Dimension.exhibitor_province: "exhibitor_province",
    Dimension.category: "category",
    Dimension.hall: "hall_id",
    Dimension.exhibitor: "exhibitor_id",
}

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


def apply_intent(intent: Intent) -> None:
    """Add a new intent to its fair's totals."""
    _move(intent, +1)


def revert_intent(intent: Intent) -> None:
    """Take a withdrawn intent out of its fair's totals."""
    _move(intent, -1)


def lock_members(intents: Sequence[Intent]) -> None:
    """Before moving several intents in one transaction (an organisation verified or not):
    take all their project and buyer member rows first, projects then buyers, each by id.

    A single move takes its two member rows and then the fair's totals row. Moving intents one
    after another would take the second intent's member rows while holding the totals row, and
    a signing holding one of them while it waits for the totals row would deadlock with it.
    """
    members = sorted({(intent.fair_id, 0, intent.project_id) for intent in intents}
                     | {(intent.fair_id, 1, intent.buyer_id) for intent in intents})
    if not members:
        return
    rows = ", ".join(f"(:fair{n}, :member{n}, :id{n}, 0)" for n in range(len(members)))
    parameters: dict[str, Any] = {}
    for number, (fair_id, kind, member_id) in enumerate(members):
        parameters |= {f"fair{number}": fair_id, f"member{number}": ("project", "buyer")[kind],
                       f"id{number}": member_id}
    # An UPSERT that changes nothing: it creates what is missing and locks what exists, in
    # the order of its rows.
    db.session.execute(text(
        "INSERT INTO fair_totals_members (fair_id, member, member_id, intent_count)"  # noqa: S608 - placeholders only
        f" VALUES {rows} ON CONFLICT (fair_id, member, member_id)"
        " DO UPDATE SET intent_count = fair_totals_members.intent_count"), parameters)


def breakdown_keys(intent: Intent) -> dict[Dimension, str]:
    """The breakdown rows an intent counts in; one signed outside a hall is in no hall's."""
    keys = {dimension: getattr(intent, column) for dimension, column in BREAKDOWN.items()}
    return {dimension: str(key) for dimension, key in keys.items() if key is not None}


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
    #: The fair's online visits (人次) as recorded: the catalogue opened, halls joined.
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
    breakdowns: Breakdowns = {dimension: {} for dimension in BREAKDOWN}
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
    # The recorded visits (the audience's breakdown by day: the catalogue opened, halls
    # joined), a row per day and kind, summed in the same statement as the totals.
    return (select(func.coalesce(func.sum(AudienceBreakdown.count), 0))
            .where(AudienceBreakdown.fair_id == fair_id, AudienceBreakdown.dimension == "day",
                   AudienceBreakdown.kind.in_(VISIT_KINDS))
            .scalar_subquery())


# --- Writing ------------------------------------------------------------------------------
# Only deals.signing, deals.service and deals.payments (the secured figures) change the totals;
# everyone else reads them with ``read_totals``.


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
# Written as an UPSERT, like _COUNT_MEMBERS, to take the two rows in the same order, project
# then buyer: an UPDATE takes them in the order it finds them, and a withdrawal holding the
# buyer's row while a signing held the project's would deadlock. Both rows exist (the intent
# was counted when signed), so nothing is ever inserted.
_UNCOUNT_MEMBERS = text(
    "INSERT INTO fair_totals_members (fair_id, member, member_id, intent_count)"
    " VALUES (:fair, 'project', :project, 0), (:fair, 'buyer', :buyer, 0)"
    " ON CONFLICT (fair_id, member, member_id)"
    " DO UPDATE SET intent_count = fair_totals_members.intent_count - 1"
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
#: away) and by the number of rows an intent counts in (one signed outside a hall, one fewer).
_CHANGE = {
    (step, rows): text(make(rows))
    for step, make in ((1, _add_to_breakdown), (-1, _take_from_breakdown))
    for rows in range(1, len(BREAKDOWN) + 1)
}
#: PostgreSQL: the locked part in one call; see fair_totals_move in migration 0005.
_MOVE_IN_ONE_CALL = text(
    "SELECT fair_totals_move(:fair, :amount, :deals, :projects, :buyers, :dimensions, :keys)"
)


def _breakdown_parameters(intent: Intent) -> dict[str, Any]:
    keys = breakdown_keys(intent)
    return {"dimensions": [dimension.value for dimension in keys], "keys": list(keys.values())}


def _move(intent: Intent, step: int) -> None:
    """Move the fair's totals by one intent: +1 adds it, -1 takes it away.

    Every writer touches rows in one order: its intent (and idempotency key), then its
    project's member row and its buyer's, then the fair's FairTotals row, then breakdown rows.
    Breakdown rows are only ever written by the holder of the FairTotals row lock, and any two
    writers that want the same row want it after everything they already hold in that order,
    so they can queue but never deadlock. The FairTotals row is locked by the UPDATE that moves
    it (PostgreSQL keeps the lock to the end of the transaction; SQLite's first write takes the
    database's write lock), and every update is relative (``x = x + d``), so none is lost.

    Taking that lock late, after the intent is written, keeps short the part that all writers
    of a fair pass one at a time: on PostgreSQL one call of fair_totals_move (migration 0005:
    the totals UPDATE, the breakdown UPSERT), then the commit; on SQLite the same statements
    one by one. It holds no INSERT of an intent, so two requests with one idempotency key meet
    on the key's unique index, not on this lock; and the totals viewers see are read after the
    commit (``read_totals``), not built while writers wait.
    """
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
        **{f"by_{dimension.value}": by(dimension) for dimension in BREAKDOWN},
    )
