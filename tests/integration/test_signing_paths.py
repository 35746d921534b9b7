"""The two paths of signing agree: SQLite's step by step (deals.signing._write_step_by_step and
deals.totals' statements) and PostgreSQL's one call (fair_sign_intent, migration 0006).

The rules of signing live in Python and, for speed, again in PL/pgSQL; these tests keep the two
in step. The same requests run through deals.service on a SQLite database and on a PostgreSQL
one, built alike, with real commits; after every step both must have answered alike (the same
refusal, for the same reason) and hold the same rows: intents (counted or not), idempotency keys,
fair totals, breakdowns, member counts and which organisations are verified, all but the ids and
times that the databases pick themselves. Buyers of verified and of unverified organisations
sign, and organisations are verified and unverified along the way.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select

from deals import service as deal_service
from deals import signing as deal_signing
from deals import totals as deal_totals
from deals.models import (
    Dimension,
    FairTotals,
    FairTotalsBreakdown,
    FairTotalsMember,
    IdempotencyKey,
    Intent,
)
from exhibitors import service as exhibitor_service
from exhibitors.models import Project
from fair import create_app
from fair import service as fair_service
from fair.accounts import service as account_service
from fair.accounts.models import Organisation, Role, User
from fair.database import as_utc
from fair.errors import FairError
from fair.extensions import db
from fair.models import Fair, FairStatus
from livehalls import broadcast
from livehalls.models import Hall
from tests.conftest import PASSWORD, base_config

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
NO_SUCH_ID = 999_999


@dataclass(frozen=True)
class Stage:
    """What both databases hold before the first signing, by id (the same in both)."""

    fair: int
    other_fair_hall: int
    halls: list[int]
    #: Published projects, each with the user who may withdraw it.
    projects: dict[int, int]
    draft: int
    #: The first three buyers' organisations are verified; the last one's is not.
    buyers: list[int]
    #: Each buyer's organisation.
    organisations: dict[int, int]


@dataclass
class Database:
    """One of the two databases, and the intents the steps so far made in it."""

    name: str
    app: Flask
    #: The intent each buyer's idempotency key made here (ids differ between the databases).
    intents: dict[tuple[int, str], int] = field(default_factory=dict)


@pytest.fixture
def databases(tmp_path: Path, migrated_database: Path, postgres_url: str,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Database]]:
    """A SQLite app and a PostgreSQL app, each on a fresh database built from the migrations."""
    monkeypatch.setattr(account_service, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    sqlite_file = tmp_path / "fair.sqlite"
    shutil.copy(migrated_database, sqlite_file)
    sqlite_app = create_app(base_config(tmp_path, sqlite_file))
    postgres_app = create_app({**base_config(tmp_path, sqlite_file),
                               "SQLALCHEMY_DATABASE_URI": postgres_url})
    with postgres_app.app_context():
        upgrade()
    made = [Database("sqlite", sqlite_app), Database("postgresql", postgres_app)]
    for database in made:
        # Nothing listens here: the news only has to reach the coalescer, not leave it.
        database.app.extensions[broadcast.EXTENSION_KEY].autoflush = False
        with database.app.app_context():
            assert db.engine.dialect.name == database.name
    yield made
    for database in made:
        with database.app.app_context():
            db.engine.dispose()


def build_stage() -> Stage:
    """An open fair with two halls, nine published projects of three exhibitors and a draft,
    four buyers; another fair with a hall of its own."""
    organiser = account_service.create_organiser(email="organiser@example.com",
                                                 password=PASSWORD)
    fair = fair_service.create_fair(organiser=organiser, name="成渝文旅采购大会",
                                    starts_at=START, ends_at=START + dt.timedelta(days=3))
    fair_service.update_fair(fair, organiser=organiser, changes={"status": FairStatus.open})
    other = fair_service.create_fair(organiser=organiser, name="另一届",
                                     starts_at=START, ends_at=START + dt.timedelta(days=1))
    projects: dict[int, int] = {}
    draft = 0
    for number, province in enumerate(("CN-SC", "CN-CQ", "CN-XZ")):
        owner = register(Role.exhibitor, province, f"exhibitor{number}")
        stand = exhibitor_service.apply_to_fair(fair, user=owner)
        exhibitor_service.approve_exhibitor(stand, organiser=organiser)
        for category in ("performance", "tourism", "intangible-heritage"):
            project = exhibitor_service.create_project(
                fair, user=owner, title=f"项目{number}{category}", category=category,
                price_fen=100_000)
            exhibitor_service.publish_project(project, user=owner)
            projects[project.id] = owner.id
        draft = exhibitor_service.create_project(fair, user=owner, title=f"草稿{number}",
                                                 category="digital", price_fen=100).id
    registered = [register(Role.buyer, province, f"buyer{number}")
                  for number, province in enumerate(("CN-SC", "CN-GD", "CN-HN", "CN-SC"))]
    organisations = {buyer.id: buyer.organisation_id for buyer in registered}
    buyers = list(organisations)
    for buyer in buyers[:3]:
        deal_service.verify_organisation(organisations[buyer], organiser=organiser)
    halls = [Hall(fair_id=fair.id, name=f"{number}号厅") for number in (1, 2)]
    elsewhere = Hall(fair_id=other.id, name="别处的厅")
    db.session.add_all([*halls, elsewhere])
    db.session.commit()
    return Stage(fair=fair.id, other_fair_hall=elsewhere.id, halls=[hall.id for hall in halls],
                 projects=projects, draft=draft, buyers=buyers, organisations=organisations)


def register(role: Role, province: str, name: str) -> User:
    return account_service.register_user(
        email=f"{name}@example.com", password=PASSWORD, name=name, role=role,
        organisation_name=f"{name} 机构", province=province,
        phone="028-8888 0000" if role is Role.buyer else "")


def staged(databases: list[Database]) -> Stage:
    stages = []
    for database in databases:
        with database.app.app_context():
            stages.append(build_stage())
    assert stages[0] == stages[1], "the two databases must start alike"
    return stages[0]


# --- Steps -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sign:
    buyer: int
    project: int
    amount_fen: int
    key: str
    hall: int | None = None
    note: str = ""
    #: Close the session first, so that on PostgreSQL the call is a transaction of its own.
    fresh: bool = True
    #: The procurement need and response it is signed from (needs.service.sign_response).
    need: int | None = None
    response: int | None = None


@dataclass(frozen=True)
class Withdraw:
    #: The intent's buyer and the key it was signed with.
    owner: int
    key: str
    #: The buyer asking: the intent's own, or another (who may not).
    buyer: int


@dataclass(frozen=True)
class SetFairStatus:
    fair: int
    status: FairStatus


@dataclass(frozen=True)
class WithdrawProject:
    project: int
    owner: int


@dataclass(frozen=True)
class SetCeiling:
    fair: int
    #: The most one intent may be worth, in fen; None for no ceiling of the fair's own.
    max_intent_fen: int | None


@dataclass(frozen=True)
class Verify:
    organisation: int
    #: False takes the verification back.
    verified: bool = True


Step = Sign | Withdraw | SetFairStatus | WithdrawProject | Verify | SetCeiling


def run(database: Database, step: Step, number: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Take the step in the database; what the service answered, comparable across
    the two (intents by their idempotency key, refusals by kind, code and reason)."""
    # Both databases get the same clock: created_at and withdrawn_at compare too.
    moment = START + dt.timedelta(minutes=number)
    monkeypatch.setattr(deal_service, "utcnow", lambda: moment)
    with database.app.app_context():
        try:
            return _take(database, step)
        except FairError as error:
            cause = error.__cause__
            reason = cause.reason if isinstance(cause, deal_signing.Refused) else None
            return ("refused", type(error).__name__, error.status, error.code, reason)
        finally:
            db.session.remove()


def _take(database: Database, step: Step) -> Any:
    if isinstance(step, Sign):
        buyer = db.session.get(User, step.buyer)
        assert buyer is not None
        if step.fresh:
            db.session.close()
        intent = deal_service.record_intent(
            step.project, buyer=buyer, amount_fen=step.amount_fen, idempotency_key=step.key,
            hall_id=step.hall, note=step.note, need_id=step.need, response_id=step.response)
        buyer_id, key = db.session.execute(select(IdempotencyKey.buyer_id, IdempotencyKey.key)
                                           .where(IdempotencyKey.intent_id == intent.id)).one()
        database.intents.setdefault((buyer_id, key), intent.id)
        assert database.intents[buyer_id, key] == intent.id
        return ("intent", buyer_id, key, intent.status.value)
    if isinstance(step, Withdraw):
        signed = database.intents.get((step.owner, step.key))
        if signed is None:
            return ("no intent", step.key)  # its signing was refused
        intent = db.session.get(Intent, signed)
        assert intent is not None
        withdrawn = deal_service.withdraw_intent(intent, buyer=db.session.get(User, step.buyer))
        return ("intent", step.owner, step.key, withdrawn.status.value)
    if isinstance(step, Verify):
        change = (deal_service.verify_organisation if step.verified
                  else deal_service.unverify_organisation)
        organisation = change(step.organisation, organiser=_organiser())
        return ("organisation", organisation.id,
                "verified" if organisation.is_verified else "unverified")
    if isinstance(step, SetCeiling):
        fair = db.session.get(Fair, step.fair)
        assert fair is not None
        fair_service.update_fair(fair, organiser=_organiser(),
                                 changes={"max_intent_fen": step.max_intent_fen})
        return ("ceiling", fair.max_intent_fen)
    if isinstance(step, SetFairStatus):
        fair = db.session.get(Fair, step.fair)
        assert fair is not None
        fair_service.update_fair(fair, organiser=_organiser(), changes={"status": step.status})
        return ("fair", fair.status.value)
    project = db.session.get(Project, step.project)
    assert project is not None
    exhibitor_service.withdraw_project(project, user=db.session.get(User, step.owner))
    return ("project", step.project, project.status.value)


def _organiser() -> User:
    organiser = account_service.find_user("organiser@example.com")
    assert organiser is not None
    return organiser


# --- Rows --------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return as_utc(value)
    return getattr(value, "value", value)


def _table(*columns: Any, join: Any = None) -> list[tuple[Any, ...]]:
    query = select(*columns)
    if join is not None:
        query = query.join(*join)
    return sorted((tuple(_plain(value) for value in row) for row in db.session.execute(query)),
                  key=repr)


def rows() -> dict[str, list[tuple[Any, ...]]]:
    """Every row signing writes, without what the database picks itself: an intent's id (its
    idempotency key names it instead) and the key's creation time."""
    return {
        "intents": _table(IdempotencyKey.key, *(column for column in Intent.__table__.c
                                                if column.name != "id"),
                          join=(Intent, Intent.id == IdempotencyKey.intent_id)),
        "idempotency_keys": _table(IdempotencyKey.buyer_id, IdempotencyKey.key,
                                   IdempotencyKey.fingerprint),
        "intents_counted": _table(func.count(Intent.id)),
        "fair_totals": _table(*FairTotals.__table__.c),
        "fair_totals_breakdown": _table(*FairTotalsBreakdown.__table__.c),
        "fair_totals_members": _table(*FairTotalsMember.__table__.c),
        "organisations": _table(Organisation.id, Organisation.verified_at.is_not(None),
                                Organisation.verified_by),
    }


def run_both(databases: list[Database], steps: list[Step],
             monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each step in both databases; after each, the same answer and the same rows."""
    answers = []
    for number, step in enumerate(steps):
        answered = [run(database, step, number, monkeypatch) for database in databases]
        assert answered[0] == answered[1], f"step {number} {step}: answers differ"
        left = []
        for database in databases:
            with database.app.app_context():
                left.append(rows())
                db.session.remove()
        for table in left[0]:
            assert left[0][table] == left[1][table], f"step {number} {step}: {table} differ"
        answers.append(answered[0])
    return answers


# --- The tests ---------------------------------------------------------------------------------


def test_every_refusal_and_retry_answers_and_leaves_alike_on_both_paths(
    databases: list[Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = staged(databases)
    published = sorted(stage.projects)
    buyer, other_buyer = stage.buyers[:2]
    first = Sign(buyer, published[0], 1_000_00, "first", hall=stage.halls[0], note=" 加急 ")
    closed_fair = Sign(buyer, published[2], 100, "while-closed")
    elsewhere = stage.other_fair_hall
    unverified = stage.buyers[3]
    organisation = stage.organisations[unverified]
    pending = Sign(unverified, published[3], 5_000_00, "unverified", hall=stage.halls[1])
    # Each step, and how it ends: an intent's status, or why it was refused.
    matrix: list[tuple[Step, str]] = [
        (first, "active"),
        (Sign(buyer, NO_SUCH_ID, 100, "no-project"), "no_project"),
        (Sign(buyer, stage.draft, 100, "draft"), "project_not_published"),
        (Sign(buyer, published[1], 100, "other-fairs-hall", hall=elsewhere), "hall_not_in_fair"),
        (Sign(buyer, published[1], 100, "no-such-hall", hall=NO_SUCH_ID), "hall_not_in_fair"),
        (first, "active"),  # an idempotent replay
        (Sign(buyer, published[0], 2_000_00, "first", hall=stage.halls[0]),
         "idempotency_key_reused"),
        (Sign(other_buyer, published[0], 2_000_00, "first"), "active"),  # their own key
        (Withdraw(buyer, "first", buyer=other_buyer), "not_yours"),
        (Withdraw(buyer, "first", buyer=buyer), "withdrawn"),
        (Withdraw(buyer, "first", buyer=buyer), "withdrawn"),  # again: changes nothing
        (first, "withdrawn"),  # replayed after the withdrawal
        (SetFairStatus(stage.fair, FairStatus.closed), "closed"),
        (closed_fair, "fair_not_open"),
        (first, "withdrawn"),  # a retry still answers while the fair is closed
        # Two reasons at once: the one checked first answers.
        (Sign(buyer, NO_SUCH_ID, 100, "no-project-while-closed"), "no_project"),
        (Sign(buyer, stage.draft, 100, "draft-while-closed"), "project_not_published"),
        (Sign(buyer, stage.draft, 100, "draft-elsewhere", hall=elsewhere), "hall_not_in_fair"),
        (Sign(buyer, NO_SUCH_ID, 100, "nothing-elsewhere", hall=elsewhere), "no_project"),
        (SetFairStatus(stage.fair, FairStatus.open), "open"),
        (closed_fair, "active"),  # the refused key was not kept
        (WithdrawProject(published[2], stage.projects[published[2]]), "withdrawn"),
        (Sign(buyer, published[2], 300, "withdrawn-project"), "project_not_published"),
        (closed_fair, "active"),  # its intent stands: a replay
        # A buyer of an unverified organisation: recorded, not counted, until verified.
        (pending, "active"),
        (Sign(unverified, published[4], 600, "unverified-withdrawn"), "active"),
        (Withdraw(unverified, "unverified-withdrawn", buyer=unverified), "withdrawn"),
        (Sign(unverified, stage.draft, 100, "unverified-draft"), "project_not_published"),
        (pending, "active"),  # a replay
        (Verify(organisation), "verified"),
        (Verify(organisation), "verified"),  # again: changes nothing
        (Sign(unverified, published[3], 700, "after-verifying"), "active"),
        (Withdraw(unverified, "after-verifying", buyer=unverified), "withdrawn"),
        (Verify(organisation, verified=False), "unverified"),
        (Sign(unverified, published[5], 800, "after-unverifying"), "active"),
        (Withdraw(unverified, "unverified", buyer=unverified), "withdrawn"),
        (Verify(organisation), "verified"),
        (Verify(stage.organisations[buyer], verified=False), "unverified"),
        (Sign(buyer, published[5], 900, "last"), "active"),
        # The fair's ceiling for one intent: refused above it, whoever signs; replays answer.
        (SetCeiling(stage.fair, 850), "850"),
        (Sign(buyer, published[5], 851, "above-the-ceiling"), "amount_over_ceiling"),
        (Sign(other_buyer, published[6], 851, "above-the-ceiling"), "amount_over_ceiling"),
        (Sign(other_buyer, published[6], 850, "at-the-ceiling"), "active"),
        (Sign(buyer, published[5], 900, "last"), "active"),  # a replay, above the ceiling
        (Sign(buyer, stage.draft, 851, "draft-above-the-ceiling"), "project_not_published"),
        (SetFairStatus(stage.fair, FairStatus.closed), "closed"),
        (Sign(buyer, published[5], 851, "closed-above-the-ceiling"), "fair_not_open"),
        (SetFairStatus(stage.fair, FairStatus.open), "open"),
        (SetCeiling(stage.fair, None), "None"),
        (Sign(buyer, published[5], 851, "above-the-ceiling"), "active"),
    ]
    answers = run_both(databases, [step for step, _ in matrix], monkeypatch)

    assert [_outcome(answer) for answer in answers] == [outcome for _, outcome in matrix]
    reasons = {answer[4] for answer in answers if answer[0] == "refused"}
    assert reasons - {None} == set(deal_signing.REFUSALS)
    with databases[0].app.app_context():
        # Both kinds of intent are left: the comparison above covered each.
        assert set(db.session.scalars(select(Intent.counted))) == {True, False}


def _outcome(answer: Any) -> str:
    if answer[0] == "refused":
        return str(answer[4] or answer[3])
    return str(answer[-1])


@pytest.mark.parametrize("seed", [11, 12])
def test_a_random_run_of_signings_and_withdrawals_leaves_the_same_rows_on_both_paths(
    databases: list[Database], monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    stage = staged(databases)
    answers = run_both(databases, random_steps(stage, random.Random(seed), 150), monkeypatch)
    kinds = {answer[3] if answer[0] == "refused" else answer[0] for answer in answers}
    # The run met every kind of answer, and withdrew some of what it signed.
    assert {"intent", "fair_not_open", "not_found", "invalid", "idempotency_key_reused",
            "organisation", "amount_over_ceiling"} <= kinds
    assert any(answer[-1] == "withdrawn" for answer in answers)


def random_steps(stage: Stage, rng: random.Random, count: int) -> list[Step]:
    """Mostly new signings, some retries and reused keys, withdrawals, the odd refusal; the
    fair closes and opens again, a project or two leave the catalogue, and buyers'
    organisations are verified and unverified."""
    projects = [*sorted(stage.projects), stage.draft, NO_SUCH_ID]
    halls = [None, None, *stage.halls, stage.other_fair_hall]
    signed: list[Sign] = []
    steps: list[Step] = []
    closed = False
    for number in range(count):
        roll = rng.random()
        if roll < 0.05:
            closed = not closed
            steps.append(SetFairStatus(stage.fair,
                                       FairStatus.closed if closed else FairStatus.open))
        elif roll < 0.07:
            project = rng.choice(sorted(stage.projects))
            steps.append(WithdrawProject(project, stage.projects[project]))
        elif roll < 0.10:
            steps.append(SetCeiling(stage.fair, rng.choice([None, 5_000_000_00])))
        elif roll < 0.12:
            chosen = rng.choice(stage.buyers)
            steps.append(Verify(stage.organisations[chosen], verified=rng.random() < 0.5))
        elif roll < 0.25 and signed:
            earlier = rng.choice(signed)
            owner = rng.random() < 0.9
            steps.append(Withdraw(earlier.buyer, earlier.key,
                                  earlier.buyer if owner else rng.choice(stage.buyers)))
        elif roll < 0.35 and signed:
            steps.append(rng.choice(signed))  # a retry of an earlier request
        elif roll < 0.42 and signed:
            earlier = rng.choice(signed)  # the same key with another request
            steps.append(Sign(earlier.buyer, earlier.project, earlier.amount_fen + 1,
                              earlier.key, hall=earlier.hall))
        else:
            sign = Sign(rng.choice(stage.buyers),
                        rng.choices(projects, weights=[8] * len(stage.projects) + [1, 1])[0],
                        rng.randint(1, 20_000_000_00), f"key-{number}",
                        hall=rng.choice(halls), note=rng.choice(["", "加急", " 请联系 "]),
                        fresh=rng.random() < 0.7)
            steps.append(sign)
            signed.append(sign)
    return steps


def test_the_function_writes_the_breakdowns_python_lists(
    databases: list[Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = staged(databases)
    in_a_hall = Sign(stage.buyers[0], sorted(stage.projects)[0], 500_00, "in-a-hall",
                     hall=stage.halls[1])
    run_both(databases, [in_a_hall], monkeypatch)
    postgres = databases[1]
    with postgres.app.app_context():
        intent = db.session.get(Intent, postgres.intents[stage.buyers[0], "in-a-hall"])
        assert intent is not None
        written = set(db.session.execute(
            select(FairTotalsBreakdown.dimension, FairTotalsBreakdown.key)
            .where(FairTotalsBreakdown.fair_id == stage.fair)).tuples())
    assert written == set(deal_totals.breakdown_keys(intent).items())
    assert {dimension for dimension, _ in written} == set(deal_totals.BREAKDOWN) == set(Dimension)


def test_intents_signed_from_a_response_carry_it_alike_on_both_paths(
    databases: list[Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = staged(databases)
    published = sorted(stage.projects)
    buyer = stage.buyers[0]
    made = []
    for database in databases:
        with database.app.app_context():
            made.append(_need_with_response(stage, buyer, published[0]))
            db.session.remove()
    assert made[0] == made[1]
    need, response = made[0]
    steps: list[Step] = [
        Sign(buyer, published[0], 50_000_00, "from-response", need=need, response=response),
        Sign(buyer, published[0], 50_000_00, "from-response", need=need, response=response),
        # The same key for the same project and amount without the response means another
        # request: refused on both paths.
        Sign(buyer, published[0], 50_000_00, "from-response"),
    ]
    answers = run_both(databases, steps, monkeypatch)
    assert [_outcome(answer) for answer in answers] == [
        "active", "active", "idempotency_key_reused"]


def _need_with_response(stage: Stage, buyer_id: int, project_id: int) -> tuple[int, int]:
    from needs.models import Need, NeedResponse, NeedStatus

    buyer = db.session.get(User, buyer_id)
    project = db.session.get(Project, project_id)
    assert buyer is not None
    assert project is not None
    assert buyer.organisation_id is not None
    need = Need(fair_id=stage.fair, buyer_id=buyer.id, organisation_id=buyer.organisation_id,
                title="非遗进校园", description_source="", description_html="",
                category="performance", province="CN-SC", city="", budget_min_fen=100,
                budget_max_fen=100_000_00, deadline=START + dt.timedelta(days=30),
                max_responses=3, response_count=1, status=NeedStatus.open)
    db.session.add(need)
    db.session.flush()
    response = NeedResponse(need_id=need.id, project_id=project.id,
                            exhibitor_id=project.exhibitor_id, price_fen=50_000_00, note="")
    db.session.add(response)
    db.session.commit()
    return need.id, response.id
