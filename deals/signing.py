"""Signing an intent: the checks, the intent and its idempotency key, its place in the totals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.exc import DBAPIError

from deals import totals
from deals.models import IdempotencyKey, Intent, IntentStatus
from exhibitors.models import Project, ProjectStatus
from fair.accounts.models import Organisation
from fair.database import execute_as_own_transaction
from fair.errors import Conflict, FairError, InvalidInput, NotFound
from fair.extensions import db
from fair.models import Fair, FairStatus
from livehalls.models import Hall


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
    #: The need and the response signed from, for an intent made from a response.
    need_id: int | None = None
    response_id: int | None = None


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

    def answer(self) -> FairError:
        """What the refusal means to the buyer."""
        return ANSWERS[self.reason]()


#: Why signing is refused, in the order checked, and what each means to the buyer. Before
#: anything is written, the project must exist and the hall be its fair's; after the intent
#: and its key are written (so that a retry of an earlier request answers that request's intent
#: instead), the project must be published, the fair open and the amount within the fair's
#: ceiling (Fair.max_intent_fen), if it set one.
ANSWERS: dict[str, Callable[[], FairError]] = {
    # A buyer sees only published projects: any other is no project at all to them.
    "no_project": lambda: NotFound(_l("没有这个项目。")),
    "hall_not_in_fair": lambda: InvalidInput(fields={"hall_id": [_l("本届大会没有这个直播厅。")]}),
    "project_not_published": lambda: NotFound(_l("没有这个项目。")),
    "fair_not_open": lambda: Conflict(_l("只有在大会进行期间才能提交签约意向。"),
                                      code="fair_not_open"),
    "amount_over_ceiling": lambda: InvalidInput(
        _l("金额超过本届大会单笔签约意向的上限。"), code="amount_over_ceiling",
        fields={"amount": [_l("超过本届大会单笔签约意向的上限。")]}),
}
REFUSALS = tuple(ANSWERS)
#: The SQLSTATE of fair_sign_intent's refusals (migrations 0006, 0014); the message is the reason.
REFUSED_SQLSTATE = "FA001"


def write_intent(signing: Signing) -> Signed:
    """Insert an intent and its idempotency key, then add the intent to its fair's totals if its
    buyer's organisation is verified (otherwise it is recorded with ``counted`` false).

    The key's unique index refuses a second request with the same key (IntegrityError) before
    the project's status and the fair's are checked (Refused). On PostgreSQL the whole write is
    one call of fair_sign_intent, a PL/pgSQL function (migration 0014_procurement_needs),
    which is its own transaction when the session has read nothing yet (fair.database.
    execute_as_own_transaction); it is kept because it is what makes bench/deals.py reach 500
    intents a second. On SQLite the same steps run one statement at a time
    (``_write_step_by_step``). The rules so live twice, and tests/integration/
    test_signing_paths.py keeps the two in step: it runs every refusal and a random run of
    signings and withdrawals through both and compares every row they leave.
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
    intent_id, fair_id, exhibitor_id, exhibitor_province, category, title, counted = row
    columns = intent_columns(signing, fair_id, exhibitor_id, exhibitor_province, category)
    return Signed(intent_id, {**columns, "counted": counted}, title)


def _write_step_by_step(signing: Signing) -> Signed:
    """What fair_sign_intent does on PostgreSQL, one statement at a time (for SQLite)."""
    project = db.session.execute(_PROJECT_FACTS, {"project": signing.project_id}).first()
    if project is None:
        raise Refused("no_project")
    if signing.hall_id is not None and db.session.scalar(
        _HALL_FAIR, {"hall": signing.hall_id}
    ) != project.fair_id:
        raise Refused("hall_not_in_fair")
    columns = intent_columns(signing, project.fair_id, project.exhibitor_id, project.province,
                             project.category)
    # Whether the buyer's organisation is verified is read by the INSERT itself, which holds
    # SQLite's write lock: a verification commits wholly before it or after it (and counts it).
    intent_id, counted = db.session.execute(
        _INSERT_INTENT, {**columns, "organisation": signing.buyer_organisation_id}).one()
    columns["counted"] = counted
    db.session.execute(_INSERT_KEY, {"buyer": signing.buyer_id, "key": signing.idempotency_key,
                                     "fingerprint": signing.fingerprint, "intent": intent_id})
    if project.status is not ProjectStatus.published:
        raise Refused("project_not_published")
    fair_status, ceiling = db.session.execute(_FAIR_RULES, {"fair": project.fair_id}).one()
    if fair_status is not FairStatus.open:
        raise Refused("fair_not_open")
    if ceiling is not None and signing.amount_fen > ceiling:
        raise Refused("amount_over_ceiling")
    if counted:
        totals.apply_intent(Intent(**columns))
    return Signed(intent_id, columns, project.title)


def intent_columns(signing: Signing, fair_id: int, exhibitor_id: int, exhibitor_province: str,
                   category: str) -> dict[str, Any]:
    """A new intent's column values: the request's, and what it copies from its project."""
    return {
        "fair_id": fair_id, "project_id": signing.project_id,
        "buyer_id": signing.buyer_id, "buyer_organisation_id": signing.buyer_organisation_id,
        "buyer_province": signing.buyer_province, "exhibitor_id": exhibitor_id,
        "exhibitor_province": exhibitor_province, "category": category,
        "hall_id": signing.hall_id, "amount_fen": signing.amount_fen, "note": signing.note,
        "status": IntentStatus.active, "created_at": signing.created_at, "secured": False,
        "withdrawn_at": None, "need_id": signing.need_id, "response_id": signing.response_id,
    }


# Every intent runs these, so they are built once, here, from bound parameters and table
# columns: SQLAlchemy then takes each compiled form from its cache and skips the ORM.
_INSERT_INTENT = insert(Intent.__table__).values(
    counted=select(Organisation.verified_at.is_not(None))
    .where(Organisation.id == bindparam("organisation")).scalar_subquery(),
).returning(Intent.__table__.c.id, Intent.__table__.c.counted)
_INSERT_KEY = insert(IdempotencyKey.__table__).values(
    buyer_id=bindparam("buyer"), key=bindparam("key"), fingerprint=bindparam("fingerprint"),
    intent_id=bindparam("intent"))
_FAIR_RULES = select(Fair.status, Fair.max_intent_fen).where(Fair.id == bindparam("fair"))
_PROJECT_FACTS = select(Project.fair_id, Project.exhibitor_id, Project.province,
                        Project.category, Project.title, Project.status
                        ).where(Project.id == bindparam("project"))
_HALL_FAIR = select(Hall.fair_id).where(Hall.id == bindparam("hall"))
# PostgreSQL: a new intent, its key, its members and the totals in one call. The function is
# fair_sign_intent in migrations/versions/0014_procurement_needs.py, kept for speed
# (one round trip instead of six); tests/integration/test_signing_paths.py keeps it and
# _write_step_by_step in step, and checks that it writes the breakdowns of totals.BREAKDOWN.
_SIGN_IN_ONE_CALL = text(
    "SELECT intent_id, project_fair, project_exhibitor, project_province, project_category,"
    " project_title, intent_counted FROM fair_sign_intent(:project_id, :buyer_id,"
    " :buyer_organisation_id, :buyer_province, :hall_id, :amount_fen, :note, :created_at,"
    " :idempotency_key, :fingerprint, :need_id, :response_id)"
)
