"""The running totals: exact sums over active intents, a seq per change, read without intents."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, update

from audience import service as audience_service
from audience.models import Kind
from deals import service
from deals import totals as deal_totals
from deals.models import FairTotals, FairTotalsBreakdown, FairTotalsMember, IdempotencyKey, Intent
from exhibitors.models import Exhibitor, Project
from fair import create_app
from fair.accounts.models import User
from fair.errors import Conflict, InvalidInput
from fair.extensions import db
from fair.models import Fair
from fair.money import MAX_DEAL_FEN, format_yuan
from livehalls import broadcast
from livehalls.models import Hall
from tests.conftest import BroadcastRecorder, base_config

Sign = Callable[..., Intent]


def test_a_fair_without_intents_has_zero_totals(fair: Fair) -> None:
    assert deal_totals.read_totals(fair.id) == {
        "seq": 0, "fair_id": fair.id, "amount": "0.00", "deal_count": 0, "project_count": 0,
        "buyer_count": 0, "secured_amount": "0.00", "secured_count": 0, "visits": 0,
        "by_buyer_province": {}, "by_exhibitor_province": {}, "by_category": {}, "by_hall": {},
        "by_exhibitor": {},
    }


def test_totals_add_up_and_break_down(
    fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], make_buyer: Callable[..., User],
    make_hall: Callable[..., Hall], sign: Sign,
) -> None:
    sichuan, sichuan_user = make_exhibitor(fair, province="CN-SC")
    beijing, beijing_user = make_exhibitor(fair, province="CN-BJ")
    opera = make_project(fair, user=sichuan_user, category="performance")
    museum = make_project(fair, user=beijing_user, category="exhibition")
    tibet, guangdong = make_buyer(province="CN-XZ"), make_buyer(province="CN-GD")
    hall = make_hall(fair)

    sign(opera, tibet, 120_000_00, hall_id=hall.id)
    sign(opera, guangdong, 30_000_50)
    sign(museum, tibet, 5_000_00, hall_id=hall.id)

    totals = deal_totals.read_totals(fair.id)
    assert totals["seq"] == 3
    assert totals["amount"] == format_yuan(120_000_00 + 30_000_50 + 5_000_00) == "155000.50"
    assert (totals["deal_count"], totals["project_count"], totals["buyer_count"]) == (3, 2, 2)
    assert totals["by_buyer_province"] == {
        "CN-GD": {"amount": "30000.50", "deal_count": 1},
        "CN-XZ": {"amount": format_yuan(120_000_00 + 5_000_00), "deal_count": 2},
    }
    assert totals["by_exhibitor_province"] == {
        "CN-BJ": {"amount": "5000.00", "deal_count": 1},
        "CN-SC": {"amount": format_yuan(120_000_00 + 30_000_50), "deal_count": 2},
    }
    assert totals["by_category"] == {
        "exhibition": {"amount": "5000.00", "deal_count": 1},
        "performance": {"amount": "150000.50", "deal_count": 2},
    }
    # The intent signed outside any hall counts everywhere but in the halls' breakdown.
    assert totals["by_hall"] == {str(hall.id): {"amount": "125000.00", "deal_count": 2}}
    assert totals["by_exhibitor"] == {
        str(sichuan.id): {"amount": "150000.50", "deal_count": 2},
        str(beijing.id): {"amount": "5000.00", "deal_count": 1},
    }


def test_distinct_counts_move_only_when_the_first_or_last_intent_comes_or_goes(
    project: Project, make_buyer: Callable[..., User], fair: Fair, sign: Sign
) -> None:
    alice, bob = make_buyer(), make_buyer()
    first = sign(project, alice, 100)
    second = sign(project, alice, 200)
    bobs = sign(project, bob, 300)

    def counts() -> tuple[int, int, int]:
        totals = deal_totals.read_totals(fair.id)
        return totals["deal_count"], totals["project_count"], totals["buyer_count"]

    assert counts() == (3, 1, 2)
    service.withdraw_intent(first, buyer=alice)
    assert counts() == (2, 1, 2)
    service.withdraw_intent(second, buyer=alice)
    assert counts() == (1, 1, 1)
    service.withdraw_intent(bobs, buyer=bob)
    assert counts() == (0, 0, 0)
    sign(project, alice, 400)
    assert counts() == (1, 1, 1)


def test_seq_grows_by_one_with_every_change_and_only_then(
    project: Project, buyer: User, fair: Fair, sign: Sign
) -> None:
    intent = sign(project, buyer, 100, key="k")
    sign(project, buyer, 100, key="k")
    with pytest.raises(InvalidInput):
        sign(project, buyer, 0)
    assert deal_totals.read_totals(fair.id)["seq"] == 1
    service.withdraw_intent(intent, buyer=buyer)
    service.withdraw_intent(intent, buyer=buyer)
    assert deal_totals.read_totals(fair.id)["seq"] == 2


def test_totals_are_read_without_touching_intents(
    project: Project, buyer: User, fair: Fair, sign: Sign
) -> None:
    sign(project, buyer, 100)
    fair_id = fair.id
    statements: list[str] = []

    def remember(conn: object, cursor: object, statement: str, *args: object) -> None:
        if threading.get_ident() == reader:  # not the broadcaster's own read of the totals
            statements.append(statement)

    reader = threading.get_ident()

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        deal_totals.read_totals(fair_id)
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    assert len(statements) == 1
    assert "intents" not in statements[0]


# --- Property: for any sequence of intents, retries and withdrawals -------------------------


@dataclass(frozen=True)
class Signed:
    buyer: int
    project: int
    amount_fen: int
    hall: int | None
    key: str


@dataclass(frozen=True)
class Withdrawn:
    which: int


SIGN = st.builds(
    Signed,
    buyer=st.integers(0, 2),
    project=st.integers(0, 2),
    # Small amounts collide into retries of the same request; large ones reach the limit.
    amount_fen=st.one_of(st.integers(1, 3), st.integers(1, MAX_DEAL_FEN)),
    hall=st.one_of(st.none(), st.integers(0, 1)),
    key=st.sampled_from(["a", "b", "c", "d"]),
)
STEPS = st.lists(st.one_of(SIGN, SIGN, st.builds(Withdrawn, st.integers(0, 50))), max_size=25)


@pytest.fixture
def stage(
    fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], make_buyer: Callable[..., User],
    make_hall: Callable[..., Hall],
) -> tuple[list[User], list[Project], list[Hall]]:
    """Three buyers of three provinces; three projects of two exhibitors; two halls."""
    _, sichuan = make_exhibitor(fair, province="CN-SC")
    _, chongqing = make_exhibitor(fair, province="CN-CQ")
    projects = [
        make_project(fair, user=sichuan, category="performance"),
        make_project(fair, user=sichuan, category="tourism", title="九寨沟研学线路"),
        make_project(fair, user=chongqing, category="digital", title="数字文化馆平台"),
    ]
    buyers = [make_buyer(province=code) for code in ("CN-SC", "CN-XZ", "CN-BJ")]
    return buyers, projects, [make_hall(fair), make_hall(fair, name="二号直播厅")]


def _start_afresh() -> None:
    """Each example starts without intents; SQLite then hands out their ids again."""
    for model in (IdempotencyKey, Intent, FairTotalsBreakdown, FairTotalsMember, FairTotals):
        db.session.execute(delete(model))
    db.session.commit()
    for instance in list(db.session.identity_map.values()):
        if isinstance(instance, IdempotencyKey | Intent):
            db.session.expunge(instance)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
def test_every_total_is_the_sum_over_the_active_intents(
    stage: tuple[list[User], list[Project], list[Hall]], fair: Fair, steps: list[object]
) -> None:
    _start_afresh()
    buyers, projects, halls = stage
    first_use: dict[tuple[int, str], Signed] = {}
    recorded: list[tuple[Signed, int]] = []  # each new intent with its id
    active: dict[int, Signed] = {}

    for step in steps:
        if isinstance(step, Signed):
            hall_id = None if step.hall is None else halls[step.hall].id
            earlier = first_use.get((step.buyer, step.key))

            def record(step: Signed = step, hall_id: int | None = hall_id) -> Intent:
                return service.record_intent(
                    projects[step.project].id, buyer=buyers[step.buyer], amount_fen=step.amount_fen,
                    idempotency_key=step.key, hall_id=hall_id,
                )

            if earlier is not None and earlier != step:
                with pytest.raises(Conflict) as refused:
                    record()
                assert refused.value.code == "idempotency_key_reused"
                continue
            intent = record()
            if earlier is None:
                first_use[(step.buyer, step.key)] = step
                recorded.append((step, intent.id))
                active[intent.id] = step
            else:
                assert earlier == step
                assert intent.id == next(i for s, i in recorded if s is earlier)
        elif recorded:
            made, intent_id = recorded[step.which % len(recorded)]
            service.withdraw_intent(db.session.get(Intent, intent_id), buyer=buyers[made.buyer])
            active.pop(intent_id, None)

    signed = list(active.values())
    totals = deal_totals.read_totals(fair.id)
    assert totals["amount"] == format_yuan(sum(s.amount_fen for s in signed))
    assert totals["deal_count"] == len(signed)
    assert totals["project_count"] == len({s.project for s in signed})
    assert totals["buyer_count"] == len({s.buyer for s in signed})

    def expected(key_of: Callable[[Signed], str | None]) -> dict[str, dict[str, object]]:
        keys = {key_of(s) for s in signed} - {None}
        return {
            key: {
                "amount": format_yuan(sum(s.amount_fen for s in signed if key_of(s) == key)),
                "deal_count": sum(1 for s in signed if key_of(s) == key),
            }
            for key in sorted(k for k in keys if k is not None)
        }

    assert totals["by_buyer_province"] == expected(
        lambda s: buyers[s.buyer].organisation.province)
    assert totals["by_exhibitor_province"] == expected(
        lambda s: projects[s.project].exhibitor.organisation.province)
    assert totals["by_category"] == expected(lambda s: projects[s.project].category)
    assert totals["by_hall"] == expected(
        lambda s: None if s.hall is None else str(halls[s.hall].id))
    assert totals["by_exhibitor"] == expected(lambda s: str(projects[s.project].exhibitor_id))


def test_the_totals_sent_are_read_after_the_commits_of_every_process(
    app: Flask, tmp_path: Path, fair: Fair, make_project: Callable[..., Project],
    make_buyer: Callable[..., User], broadcasts: BroadcastRecorder,
) -> None:
    # A second app on the same database file stands for a second server process; whatever it
    # committed is in the totals this process sends, read when the message leaves.
    other = create_app(base_config(tmp_path, tmp_path / "fair.sqlite"))
    other.extensions[broadcast.EXTENSION_KEY].autoflush = False  # its viewers are not here
    project = make_project(fair, province="CN-SC")
    buyers = [make_buyer(province=province) for province in ("CN-XZ", "CN-GD")]
    ids = (project.id, [buyer.id for buyer in buyers])
    with broadcasts.expect(3) as sent:
        service.record_intent(project.id, buyer=buyers[0], amount_fen=100_00,
                              idempotency_key="here")
        with other.app_context():
            service.record_intent(ids[0],
                                  buyer=db.session.get(User, ids[1][1]), amount_fen=200_00,
                                  idempotency_key="there")
    totals = sent[1].payload
    assert sent[1].event == "totals"
    assert (totals["seq"], totals["amount"], totals["buyer_count"]) == (2, "300.00", 2)
    assert totals == deal_totals.read_totals(fair.id)
    with other.app_context():
        db.engine.dispose()


def test_the_totals_carry_the_recorded_visits_of_the_catalogue_and_the_halls(
    fair: Fair, make_hall: Callable[..., Hall], project: Project, buyer: User, sign: Sign,
) -> None:
    halls = [make_hall(fair, name=name) for name in ("一号厅", "二号厅")]
    visitor = audience_service.Actor(user_id=None, visitor="0" * 32)
    audience_service.write_events(
        [audience_service.event_row(Kind.hall_visit, fair_id=fair.id, actor=visitor,
                                    hall_id=hall.id) for hall in halls for _ in range(600)]
        + [audience_service.event_row(Kind.visit, fair_id=fair.id, actor=visitor)] * 329
        + [audience_service.event_row(Kind.view, fair_id=fair.id, actor=visitor,
                                      project_id=project.id)] * 7)  # a view is no visit
    # What presence saved of the halls' joins is the live figure, not the totals'.
    db.session.execute(update(Hall).where(Hall.id == halls[0].id).values(visits=99))
    db.session.commit()
    assert deal_totals.read_totals(fair.id)["visits"] == 1_529  # before any intent, too
    sign(project, buyer, 100_00)
    assert deal_totals.read_totals(fair.id)["visits"] == 1_529


def test_the_committed_seq_of_several_fairs_is_read_at_once(
    fair: Fair, make_fair: Callable[..., Fair], project: Project, buyer: User, sign: Sign,
) -> None:
    quiet = make_fair(name="没有意向的展会")
    sign(project, buyer, 100_00)
    sign(project, buyer, 200_00)
    assert deal_totals.read_seqs([fair.id, quiet.id]) == {fair.id: 2, quiet.id: 0}
