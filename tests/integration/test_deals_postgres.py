"""Intents on PostgreSQL: many threads signing at once, with repeated keys and withdrawals.

Each thread runs in its own app context (its own session and connection), as gunicorn's
greenlets do; two apps stand for two server processes, each with its own totals snapshot.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select

from deals import service as deal_service
from deals import signing as deal_signing
from deals import totals as deal_totals
from deals.models import IdempotencyKey, Intent, IntentStatus
from exhibitors import service as exhibitor_service
from fair import create_app
from fair import service as fair_service
from fair.accounts import service as account_service
from fair.accounts.models import Role, User
from fair.errors import FairError
from fair.extensions import db
from fair.models import FairStatus
from fair.money import format_yuan
from livehalls import broadcast
from livehalls.models import Hall
from tests.conftest import PASSWORD, base_config

pytestmark = pytest.mark.integration

THREADS = 12
#: Each request is sent this many times, by different threads at about the same moment.
COPIES = 3
REQUESTS = 240


@dataclass(frozen=True)
class Request:
    buyer: int
    project: int
    amount_fen: int
    hall: int | None
    key: str


@dataclass(frozen=True)
class Stage:
    fair_id: int
    #: Their organisations are verified: their intents count.
    buyers: list[int]
    projects: list[int]
    halls: list[int]


@pytest.fixture
def apps(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[list[Flask]]:
    """Two apps on one fresh database built from the migrations: two server processes."""
    monkeypatch.setattr(account_service, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    config = base_config(tmp_path, tmp_path / "unused.sqlite")
    config["SQLALCHEMY_DATABASE_URI"] = postgres_url
    made = [create_app(config), create_app(config)]
    for app in made:
        # No /live clients here: a flush in the background would read a database about to be
        # dropped. committed_news still sees what reaches each broadcaster.
        app.extensions[broadcast.EXTENSION_KEY].autoflush = False
    with made[0].app_context():
        upgrade()
    yield made
    for app in made:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def stage(apps: list[Flask]) -> Stage:
    """An open fair, three halls, twelve projects of four exhibitors, eight buyers."""
    with apps[0].app_context():
        organiser = account_service.create_organiser(email="organiser@example.com",
                                                     password=PASSWORD)
        starts = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
        fair = fair_service.create_fair(organiser=organiser, name="并发签约测试",
                                        starts_at=starts, ends_at=starts + dt.timedelta(days=3))
        fair_service.update_fair(fair, organiser=organiser, changes={"status": FairStatus.open})
        projects = []
        for number, province in enumerate(("CN-SC", "CN-CQ", "CN-XZ", "CN-BJ")):
            owner = _user(Role.exhibitor, province, f"exhibitor{number}")
            stand = exhibitor_service.apply_to_fair(fair, user=owner)
            exhibitor_service.approve_exhibitor(stand, organiser=organiser)
            for category in ("performance", "tourism", "digital"):
                project = exhibitor_service.create_project(
                    fair, user=owner, title=f"项目{number}{category}", category=category,
                    price_fen=100_000)
                exhibitor_service.publish_project(project, user=owner)
                projects.append(project.id)
        buyers = [_user(Role.buyer, province, f"buyer{number}").id for number, province
                  in enumerate(("CN-SC", "CN-SC", "CN-GD", "CN-HN", "CN-SH", "CN-XZ", "CN-YN",
                                "CN-GZ"))]
        for buyer in buyers:
            deal_service.verify_organisation(_organisation_of(buyer), organiser=organiser)
        halls = [Hall(fair_id=fair.id, name=f"{number}号厅") for number in (1, 2, 3)]
        db.session.add_all(halls)
        db.session.commit()
        return Stage(fair.id, buyers, projects, [hall.id for hall in halls])


def _user(role: Role, province: str, name: str) -> User:
    return account_service.register_user(
        email=f"{name}@example.com", password=PASSWORD, name=name, role=role,
        organisation_name=f"{name} 机构", province=province,
        phone="028-8888 0000" if role is Role.buyer else "")


def _organisation_of(buyer_id: int) -> int:
    buyer = db.session.get(User, buyer_id)
    assert buyer is not None
    assert buyer.organisation_id is not None
    return buyer.organisation_id


def _requests(stage: Stage, rng: random.Random) -> list[Request]:
    return [
        Request(buyer=rng.choice(stage.buyers), project=rng.choice(stage.projects),
                amount_fen=rng.randint(1, 20_000_000_00),
                hall=rng.choice([None, *stage.halls]), key=f"key-{number}")
        for number in range(REQUESTS)
    ]


def _sign(request: Request, *, fresh: bool = True) -> int:
    buyer = db.session.get(User, request.buyer)
    assert buyer is not None
    assert buyer.organisation is not None
    if fresh:
        # As in a request with a trusted bearer token: the session holds no connection when it
        # signs, so the call is a transaction of its own.
        db.session.close()
    return deal_service.record_intent(
        request.project, buyer=buyer, amount_fen=request.amount_fen, idempotency_key=request.key,
        hall_id=request.hall).id


def _run_threads(apps: list[Flask], work: list[list[Any]], act: Any) -> list[BaseException]:
    """Run `act(item)` for each item of each thread's list, all threads starting at once."""
    barrier = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(number: int) -> None:
        with apps[number % len(apps)].app_context():
            barrier.wait()
            for item in work[number]:
                try:
                    act(item)
                except BaseException as error:  # reported by the test, not lost in a thread
                    errors.append(error)
            db.session.remove()

    threads = [threading.Thread(target=run, args=(number,)) for number in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.fixture
def committed_news(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What reached either app's broadcaster after a commit: True for a deal, False for a
    withdrawal (totals only)."""
    seen: list[bool] = []
    lock = threading.Lock()
    submit = broadcast.Coalescer.submit

    def record(coalescer: broadcast.Coalescer, news: Any) -> None:
        with lock:
            seen.extend(item.deal is not None for item in news)
        submit(coalescer, news)

    monkeypatch.setattr(broadcast.Coalescer, "submit", record)
    return seen


@pytest.mark.parametrize("fresh", [True, False], ids=["own-transaction", "joined"])
def test_many_threads_signing_with_repeated_keys_keep_exact_totals(
    apps: list[Flask], stage: Stage, postgres_url: str, committed_news: list[bool], fresh: bool
) -> None:
    rng = random.Random(4)
    requests = _requests(stage, rng)
    # Every request goes to COPIES different threads, as a client's retries would.
    work: list[list[Request]] = [[] for _ in range(THREADS)]
    for request in requests:
        for thread in rng.sample(range(THREADS), COPIES):
            work[thread].append(request)
    for items in work:
        rng.shuffle(items)
    answers: dict[str, set[int]] = {request.key: set() for request in requests}
    answers_lock = threading.Lock()

    def sign(request: Request) -> None:
        intent_id = _sign(request, fresh=fresh)
        with answers_lock:
            answers[request.key].add(intent_id)

    assert _run_threads(apps, work, sign) == []
    # Every copy of a request got the same intent, and no two requests share one.
    assert all(len(ids) == 1 for ids in answers.values())
    assert len({next(iter(ids)) for ids in answers.values()}) == REQUESTS

    # Then half of them are withdrawn, each by two threads at once.
    withdrawn = rng.sample(sorted(next(iter(ids)) for ids in answers.values()), REQUESTS // 2)
    work = [[] for _ in range(THREADS)]
    for intent_id in withdrawn:
        for thread in rng.sample(range(THREADS), 2):
            work[thread].append(intent_id)

    def withdraw(intent_id: int) -> None:
        intent = db.session.get(Intent, intent_id)
        assert intent is not None
        deal_service.withdraw_intent(intent, buyer=db.session.get(User, intent.buyer_id))

    assert _run_threads(apps, work, withdraw) == []

    with apps[0].app_context():
        assert db.session.scalar(select(func.count()).select_from(Intent)) == REQUESTS
        statuses = Counter(db.session.scalars(select(Intent.status)))
        assert statuses == {IntentStatus.active: REQUESTS // 2,
                            IntentStatus.withdrawn: REQUESTS // 2}
        totals = deal_totals.read_totals(stage.fair_id)
    active = [request for request in requests
              if next(iter(answers[request.key])) not in set(withdrawn)]
    # Exactly one change per intent and per withdrawal, whichever thread made it.
    assert totals["seq"] == REQUESTS + REQUESTS // 2
    assert totals["deal_count"] == len(active)
    assert totals["project_count"] == len({request.project for request in active})
    assert totals["buyer_count"] == len({request.buyer for request in active})
    _assert_sums(postgres_url, stage.fair_id, totals)
    # Each committed change told the broadcaster once, whichever app made it; a retry or a
    # second withdrawal of the same intent told it nothing.
    assert Counter(committed_news) == {True: REQUESTS, False: REQUESTS // 2}
    with psycopg.connect(postgres_url) as connection:
        deadlocks = connection.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert deadlocks == (0,)


def _assert_sums(postgres_url: str, fair_id: int, totals: dict[str, Any]) -> None:
    """Every total and breakdown equals SUM/COUNT over the active intents that count, in SQL."""
    columns = {f"by_{dimension.value}": f"CAST({column} AS TEXT)"
               for dimension, column in deal_totals.BREAKDOWN.items()}
    with psycopg.connect(postgres_url) as connection:
        amount, count = connection.execute(
            "SELECT COALESCE(SUM(amount_fen), 0)::bigint, COUNT(*) FROM intents "
            "WHERE fair_id = %s AND status = 'active' AND counted",
            (fair_id,)).fetchone() or (0, 0)
        assert (totals["amount"], totals["deal_count"]) == (format_yuan(amount), count)
        for name, column in columns.items():
            rows = connection.execute(
                f"SELECT {column}, SUM(amount_fen)::bigint, COUNT(*) FROM intents "  # noqa: S608
                f"WHERE fair_id = %s AND status = 'active' AND counted AND {column} IS NOT NULL "
                f"GROUP BY {column}", (fair_id,)).fetchall()
            assert totals[name] == {
                key: {"amount": format_yuan(fen), "deal_count": deals}
                for key, fen, deals in sorted(rows)
            }, name


def test_verifying_while_its_buyers_sign_and_withdraw_keeps_exact_totals(
    apps: list[Flask], stage: Stage, postgres_url: str
) -> None:
    # Two buyers' organisations are verified and unverified over and over while their buyers
    # sign and withdraw: every intent must end counted exactly when its organisation is
    # verified, and the totals must equal the sums over what counts, whatever the order.
    rng = random.Random(9)
    moving = stage.buyers[-2:]
    with apps[0].app_context():
        organiser = account_service.find_user("organiser@example.com")
        assert organiser is not None
        organisations = [_organisation_of(buyer) for buyer in moving]
        for organisation in organisations:
            deal_service.unverify_organisation(organisation, organiser=organiser)
        organiser_id = organiser.id
    requests = [Request(buyer=rng.choice(moving), project=rng.choice(stage.projects),
                        amount_fen=rng.randint(1, 20_000_000_00), hall=rng.choice(
                            [None, *stage.halls]), key=f"moving-{number}")
                for number in range(120)]
    signers = THREADS - len(organisations)
    work: list[list[Any]] = [requests[number::signers] for number in range(signers)]
    # 9 changes for the first organisation (it ends verified), 10 for the second (it does not).
    work += [[(organisation, number % 2 == 0) for number in range(changes)]
             for organisation, changes in zip(organisations, (9, 10), strict=True)]

    def act(item: Any) -> None:
        if isinstance(item, Request):
            intent_id = _sign(item)
            if int(item.key.removeprefix("moving-")) % 3 == 0:  # a third are withdrawn
                intent = db.session.get(Intent, intent_id)
                assert intent is not None
                deal_service.withdraw_intent(intent, buyer=db.session.get(User, item.buyer))
            return
        organisation, verify = item
        change = (deal_service.verify_organisation if verify
                  else deal_service.unverify_organisation)
        change(organisation, organiser=db.session.get(User, organiser_id))

    assert _run_threads(apps, work, act) == []
    with apps[0].app_context():
        counted = {organisation: (every, some) for organisation, every, some in db.session.execute(
            select(Intent.buyer_organisation_id, func.bool_and(Intent.counted),
                   func.bool_or(Intent.counted))
            .where(Intent.buyer_organisation_id.in_(organisations))
            .group_by(Intent.buyer_organisation_id))}
        totals = deal_totals.read_totals(stage.fair_id)
    assert counted == {organisations[0]: (True, True), organisations[1]: (False, False)}
    assert totals["deal_count"] > 0
    _assert_sums(postgres_url, stage.fair_id, totals)


def test_two_requests_with_one_key_at_the_same_moment_make_one_intent(
    apps: list[Flask], stage: Stage
) -> None:
    request = Request(buyer=stage.buyers[0], project=stage.projects[0], amount_fen=5_000_00,
                      hall=None, key="same-moment")
    ids: list[int] = []
    assert _run_threads(apps, [[request] for _ in range(8)],
                        lambda item: ids.append(_sign(item))) == []
    assert len(set(ids)) == 1
    with apps[1].app_context():
        assert db.session.scalar(select(func.count()).select_from(Intent)) == 1
        assert deal_totals.read_totals(stage.fair_id)["seq"] == 1


def test_the_same_key_with_another_body_at_the_same_moment_is_refused_once(
    apps: list[Flask], stage: Stage
) -> None:
    first, second = (Request(buyer=stage.buyers[0], project=stage.projects[0],
                             amount_fen=amount, hall=None, key="contested")
                     for amount in (100, 200))
    outcomes: list[str] = []

    def sign(request: Request) -> None:
        try:
            _sign(request)
            outcomes.append("signed")
        except FairError as refused:
            outcomes.append(refused.code)

    assert _run_threads(apps, [[first], [second]], sign) == []
    assert sorted(outcomes) == ["idempotency_key_reused", "signed"]
    with apps[0].app_context():
        assert db.session.scalar(select(func.count()).select_from(Intent)) == 1


def test_signing_in_one_call_refuses_a_closed_fair_and_leaves_nothing_behind(
    apps: list[Flask], stage: Stage
) -> None:
    # fair_sign_intent writes the intent and its key before it reads the fair's status: the
    # refusal must roll all of it back, while a retry of an earlier request still answers.
    earlier = Request(buyer=stage.buyers[0], project=stage.projects[0], amount_fen=300_00,
                      hall=stage.halls[0], key="before-closing")
    with apps[0].app_context():
        earlier_id = _sign(earlier)
        organiser = account_service.find_user("organiser@example.com")
        fair = fair_service.access_fair(stage.fair_id)
        fair_service.update_fair(fair, organiser=organiser,
                                 changes={"status": FairStatus.closed})
        before = deal_totals.read_totals(stage.fair_id)

        with pytest.raises(FairError) as refused:
            _sign(Request(buyer=stage.buyers[1], project=stage.projects[1], amount_fen=100,
                          hall=None, key="after-closing"))
        assert refused.value.code == "fair_not_open"
        assert _sign(earlier) == earlier_id

        assert db.session.scalar(select(func.count()).select_from(Intent)) == 1
        assert deal_totals.read_totals(stage.fair_id) == before
        assert db.session.scalar(
            select(func.count()).select_from(IdempotencyKey)) == 1


def test_signing_in_one_call_keeps_the_same_totals_as_step_by_step(
    apps: list[Flask], stage: Stage, committed_news: list[bool]
) -> None:
    rng = random.Random(7)
    with apps[0].app_context():
        for request in _requests(stage, rng)[:30]:
            _sign(request)
        kept = deal_totals.read_totals(stage.fair_id)
        intents = db.session.scalars(select(Intent)).all()
    assert kept["seq"] == 30
    assert committed_news == [True] * 30
    assert kept["amount"] == format_yuan(sum(intent.amount_fen for intent in intents))
    assert kept["project_count"] == len({intent.project_id for intent in intents})
    assert kept["buyer_count"] == len({intent.buyer_id for intent in intents})
    by_hall = Counter(str(intent.hall_id) for intent in intents if intent.hall_id is not None)
    assert {hall: entry["deal_count"] for hall, entry in kept["by_hall"].items()} == by_hall


def _signing(stage: Stage, *, project: int, key: str, hall: int | None = None
             ) -> deal_signing.Signing:
    buyer = db.session.get(User, stage.buyers[0])
    assert buyer is not None
    assert buyer.organisation is not None
    return deal_signing.Signing(
        project_id=project, buyer_id=buyer.id, buyer_organisation_id=buyer.organisation.id,
        buyer_province=buyer.organisation.province, hall_id=hall, amount_fen=1_000_00,
        note="", created_at=dt.datetime.now(dt.UTC), idempotency_key=key, fingerprint=key)


def _totals_lock_is_free(postgres_url: str, fair_id: int) -> bool:
    """Whether another connection can take the fair's totals row at once."""
    with psycopg.connect(postgres_url) as other:
        other.execute("SET lock_timeout = '500ms'")
        try:
            updated = other.execute("UPDATE fair_totals SET seq = seq WHERE fair_id = %s",
                                    (fair_id,)).rowcount
        except psycopg.errors.LockNotAvailable:
            return False
        assert updated == 1, "the fair has no totals row yet"
        return True


def _intents_seen_elsewhere(postgres_url: str) -> int:
    with psycopg.connect(postgres_url) as other:
        row = other.execute("SELECT count(*) FROM intents").fetchone()
    assert row is not None
    return int(row[0])


def test_signing_is_a_transaction_of_its_own_when_the_session_has_read_nothing(
    apps: list[Flask], stage: Stage, postgres_url: str
) -> None:
    with apps[0].app_context():
        _sign(Request(buyer=stage.buyers[1], project=stage.projects[1], amount_fen=100,
                      hall=None, key="the-fairs-first"))
        signing = _signing(stage, project=stage.projects[0], key="alone")
        db.session.close()
        deal_signing.write_intent(signing)
        # Committed and its locks gone as the call returns, before the session commits: the
        # fair's other writers never wait on a round trip to this process.
        assert _intents_seen_elsewhere(postgres_url) == 2
        assert _totals_lock_is_free(postgres_url, stage.fair_id)
        db.session.rollback()
        assert _intents_seen_elsewhere(postgres_url) == 2


def test_signing_joins_the_transaction_of_a_session_that_read_first(
    apps: list[Flask], stage: Stage, postgres_url: str
) -> None:
    with apps[0].app_context():
        _sign(Request(buyer=stage.buyers[1], project=stage.projects[1], amount_fen=100,
                      hall=None, key="the-fairs-first"))
        signing = _signing(stage, project=stage.projects[0], key="joined")
        deal_signing.write_intent(signing)
        assert _intents_seen_elsewhere(postgres_url) == 1
        assert not _totals_lock_is_free(postgres_url, stage.fair_id)
        db.session.rollback()
        assert _intents_seen_elsewhere(postgres_url) == 1
        assert deal_totals.read_totals(stage.fair_id)["seq"] == 1


def test_signing_in_one_call_refuses_what_may_not_be_signed_and_writes_nothing(
    apps: list[Flask], stage: Stage
) -> None:
    with apps[0].app_context():
        other_fair_hall = Hall(fair_id=fair_service.create_fair(
            organiser=account_service.find_user("organiser@example.com"), name="另一届",
            starts_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
            ends_at=dt.datetime(2027, 1, 2, tzinfo=dt.UTC)).id, name="别处的厅")
        db.session.add(other_fair_hall)
        db.session.commit()
        project = exhibitor_service.access_project(stage.projects[0], None)
        owner = account_service.find_user("exhibitor0@example.com")
        exhibitor_service.withdraw_project(project, user=owner)
        cases = [
            (999_999, None, "no_project"),
            (stage.projects[1], other_fair_hall.id, "hall_not_in_fair"),
            (stage.projects[1], 999_999, "hall_not_in_fair"),
            (stage.projects[0], None, "project_not_published"),
        ]
        for number, (project_id, hall_id, reason) in enumerate(cases):
            signing = _signing(stage, project=project_id, key=f"refused-{number}", hall=hall_id)
            db.session.close()
            with pytest.raises(deal_signing.Refused) as refused:
                deal_signing.write_intent(signing)
            assert refused.value.reason == reason
            db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Intent)) == 0
        assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
        assert deal_totals.read_totals(stage.fair_id)["seq"] == 0


def test_a_retry_after_the_project_was_withdrawn_answers_the_earlier_intent(
    apps: list[Flask], stage: Stage
) -> None:
    earlier = Request(buyer=stage.buyers[0], project=stage.projects[0], amount_fen=300_00,
                      hall=None, key="before-withdrawing")
    with apps[0].app_context():
        earlier_id = _sign(earlier)
        project = exhibitor_service.access_project(stage.projects[0], None)
        exhibitor_service.withdraw_project(
            project, user=account_service.find_user("exhibitor0@example.com"))
        assert _sign(earlier) == earlier_id
        with pytest.raises(FairError) as refused:
            _sign(Request(buyer=stage.buyers[1], project=stage.projects[0], amount_fen=100,
                          hall=None, key="after-withdrawing"))
        assert refused.value.status == 404
        assert db.session.scalar(select(func.count()).select_from(Intent)) == 1


def test_a_withdrawal_takes_its_member_rows_in_the_order_a_signing_does(
    apps: list[Flask], stage: Stage, postgres_url: str
) -> None:
    # A signing counts its project, then its buyer (INSERT ... ON CONFLICT, row by row). Were a
    # withdrawal to take the buyer's row first, a signing holding the project's row and waiting
    # for the buyer's would wait for it in turn: a deadlock.
    buyer, project = stage.buyers[0], stage.projects[0]
    with apps[0].app_context():
        # The buyer's row comes first in the table, before the project's.
        _sign(Request(buyer=buyer, project=stage.projects[1], amount_fen=100, hall=None,
                      key="earlier"))
        intent_id = _sign(Request(buyer=buyer, project=project, amount_fen=100, hall=None,
                                  key="to-withdraw"))
    member = ("UPDATE fair_totals_members SET intent_count = intent_count + 0"
              " WHERE fair_id = %s AND member = %s AND member_id = %s")
    with psycopg.connect(postgres_url) as signing:
        signing.execute(member, (stage.fair_id, "project", project))
        withdrawn: list[BaseException | str] = []

        def withdraw() -> None:
            with apps[1].app_context():
                try:
                    intent = db.session.get(Intent, intent_id)
                    assert intent is not None
                    deal_service.withdraw_intent(intent, buyer=db.session.get(User, buyer))
                    withdrawn.append("withdrawn")
                except BaseException as error:
                    withdrawn.append(error)
                finally:
                    db.session.remove()

        thread = threading.Thread(target=withdraw)
        thread.start()
        _wait_until_someone_waits_for_a_lock(postgres_url)
        signing.execute("SET lock_timeout = '3s'")
        signing.execute(member, (stage.fair_id, "buyer", buyer))  # free: the withdrawal waits
        signing.rollback()
        thread.join()
    assert withdrawn == ["withdrawn"]
    with psycopg.connect(postgres_url) as connection:
        deadlocks = connection.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert deadlocks == (0,)


def _wait_until_someone_waits_for_a_lock(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as watcher:
        for _ in range(500):
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'").fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the withdrawal never waited for the project's row")
