"""Intent use cases: who may sign, what is refused, idempotency, withdrawal, lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from deals import schemas, service
from deals import signing as deal_signing
from deals import totals as deal_totals
from deals.models import FairTotals, IdempotencyKey, Intent, IntentStatus
from exhibitors import service as exhibitor_service
from exhibitors.models import Exhibitor, Project
from fair import database as fair_database
from fair import service as fair_service
from fair.accounts.models import Role, User
from fair.errors import Conflict, FairError, Forbidden, InvalidInput, NotFound, Unauthorized
from fair.extensions import db
from fair.models import Fair, FairStatus
from fair.money import MAX_DEAL_FEN
from livehalls.models import Hall
from livehalls.rooms import dashboard_room, fair_room
from tests.conftest import BroadcastRecorder

Sign = Callable[..., Intent]


def snapshot() -> tuple[int, int, int]:
    """Intents, idempotency keys and the totals' seq: what a refusal must leave alone."""
    intents = db.session.scalar(select(func.count()).select_from(Intent))
    keys = db.session.scalar(select(func.count()).select_from(IdempotencyKey))
    seq = db.session.scalar(select(func.coalesce(func.sum(FairTotals.seq), 0)))
    return intents or 0, keys or 0, seq or 0


def test_buyer_signs_an_intent_that_copies_who_and_what(
    project: Project, make_buyer: Callable[..., User], make_hall: Callable[..., Hall],
    fair: Fair, sign: Sign,
) -> None:
    buyer = make_buyer(province="CN-XZ")
    hall = make_hall(fair)
    intent = sign(project, buyer, 12_345_600, hall_id=hall.id, note="  拟于明年春节采购  ")
    assert intent.status is IntentStatus.active
    assert (intent.fair_id, intent.project_id, intent.buyer_id) == (fair.id, project.id, buyer.id)
    assert intent.buyer_province == "CN-XZ"
    assert intent.buyer_organisation_id == buyer.organisation_id
    assert intent.exhibitor_id == project.exhibitor_id
    assert intent.exhibitor_province == "CN-SC"
    assert intent.category == "performance"
    assert intent.hall_id == hall.id
    assert intent.amount_fen == 12_345_600
    assert intent.note == "拟于明年春节采购"
    assert not intent.secured


@pytest.mark.parametrize("role", [None, Role.exhibitor, Role.organiser])
def test_only_buyers_sign(project: Project, make_user: Callable[..., User], role: Role | None,
                          sign: Sign) -> None:
    user = None if role is None else make_user(role)
    before = snapshot()
    with pytest.raises(Unauthorized if role is None else Forbidden):
        sign(project, user)
    assert snapshot() == before


def test_the_projects_own_exhibitor_cannot_sign(
    fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], sign: Sign,
) -> None:
    _, exhibitor_user = make_exhibitor(fair)
    own = make_project(fair, user=exhibitor_user)
    with pytest.raises(Forbidden):
        sign(own, exhibitor_user)


@pytest.mark.parametrize("publish", [False, True])
def test_only_published_projects_are_signed(
    fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], buyer: User, sign: Sign, publish: bool,
) -> None:
    _, owner = make_exhibitor(fair)
    project = make_project(fair, user=owner, publish=publish)
    if publish:
        exhibitor_service.withdraw_project(project, user=owner)
    before = snapshot()
    # To a buyer a draft or withdrawn project is no project at all, as on its page.
    with pytest.raises(NotFound):
        sign(project, buyer)
    assert snapshot() == before


@pytest.mark.parametrize("status", [FairStatus.draft, FairStatus.closed])
def test_only_open_fairs_take_intents(
    make_fair: Callable[..., Fair], make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], organiser: User, buyer: User, sign: Sign,
    status: FairStatus,
) -> None:
    fair = make_fair()
    project = make_project(fair)
    fair_service.update_fair(fair, organiser=organiser, changes={"status": FairStatus.closed})
    if status is FairStatus.draft:
        # A fair cannot go back to draft; the rule is the same, so look at it directly.
        fair.status = FairStatus.draft
        db.session.commit()
    before = snapshot()
    with pytest.raises(Conflict) as refused:
        sign(project, buyer)
    assert refused.value.code == "fair_not_open"
    assert snapshot() == before


def test_the_hall_must_belong_to_the_projects_fair(
    project: Project, make_fair: Callable[..., Fair], make_hall: Callable[..., Hall],
    buyer: User, sign: Sign,
) -> None:
    elsewhere = make_hall(make_fair(name="另一届采购大会"))
    before = snapshot()
    for hall_id in (elsewhere.id, 999_999):
        with pytest.raises(InvalidInput) as refused:
            sign(project, buyer, hall_id=hall_id)
        assert "hall_id" in refused.value.fields
    assert snapshot() == before


@pytest.mark.parametrize("amount_fen", [0, -1, -100, MAX_DEAL_FEN + 1, True])
def test_amounts_outside_the_rules_are_refused(
    project: Project, buyer: User, sign: Sign, amount_fen: Any
) -> None:
    before = snapshot()
    with pytest.raises(InvalidInput) as refused:
        sign(project, buyer, amount_fen)
    assert "amount" in refused.value.fields
    assert snapshot() == before


def test_the_largest_amount_is_accepted(project: Project, buyer: User, sign: Sign) -> None:
    assert sign(project, buyer, MAX_DEAL_FEN).amount_fen == MAX_DEAL_FEN


def test_a_long_note_is_refused(project: Project, buyer: User, sign: Sign) -> None:
    with pytest.raises(InvalidInput) as refused:
        sign(project, buyer, note="注" * 501)
    assert "note" in refused.value.fields


@pytest.mark.parametrize("key", ["", " ", "a b", "k" * 101, "ключ", "键", "tab\there", None])
def test_malformed_idempotency_keys_are_refused(
    project: Project, buyer: User, key: Any
) -> None:
    before = snapshot()
    with pytest.raises(InvalidInput) as refused:
        service.record_intent(project.id, buyer=buyer, amount_fen=100, idempotency_key=key)
    assert refused.value.code == "idempotency_key_invalid"
    assert snapshot() == before


def test_a_uuid_and_a_key_of_100_characters_are_accepted(
    project: Project, buyer: User, sign: Sign
) -> None:
    sign(project, buyer, key="0b8a3c1e-5f7d-4c2a-9e1b-3d6f8a2c4e00")
    sign(project, buyer, key="~" * 100)
    assert snapshot()[0] == 2


def test_the_same_key_and_request_return_the_same_intent_and_change_nothing(
    project: Project, buyer: User, sign: Sign, fair: Fair,
) -> None:
    first = sign(project, buyer, 500_000, key="retry-me", note="备注")
    before = snapshot()
    totals = deal_totals.read_totals(fair.id)
    again = sign(project, buyer, 500_000, key="retry-me", note="备注")
    assert again.id == first.id
    assert snapshot() == before
    assert deal_totals.read_totals(fair.id) == totals


@pytest.mark.parametrize("change", [
    {"amount_fen": 500_001}, {"note": "另一笔"}, {"hall": True}, {"project": True},
])
def test_the_same_key_with_another_request_is_refused(
    project: Project, buyer: User, sign: Sign, fair: Fair, make_hall: Callable[..., Hall],
    make_project: Callable[..., Project], change: dict[str, Any],
) -> None:
    sign(project, buyer, 500_000, key="used")
    other_project = make_project(fair, title="蜀绣体验课") if "project" in change else project
    hall_id = make_hall(fair).id if "hall" in change else None
    before = snapshot()
    with pytest.raises(Conflict) as refused:
        sign(other_project, buyer, change.get("amount_fen", 500_000), key="used",
             note=change.get("note", ""), hall_id=hall_id)
    assert refused.value.code == "idempotency_key_reused"
    assert snapshot() == before


def test_keys_belong_to_their_buyer(
    project: Project, make_buyer: Callable[..., User], sign: Sign
) -> None:
    one = sign(project, make_buyer(), 100, key="shared")
    other = sign(project, make_buyer(), 100, key="shared")
    assert one.id != other.id


def test_a_retry_after_the_fair_closed_still_answers_with_the_intent(
    project: Project, buyer: User, sign: Sign, fair: Fair, organiser: User
) -> None:
    intent = sign(project, buyer, 100, key="late")
    fair_service.update_fair(fair, organiser=organiser, changes={"status": FairStatus.closed})
    assert sign(project, buyer, 100, key="late").id == intent.id


def test_a_retry_after_the_project_was_withdrawn_still_answers_with_the_intent(
    fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], buyer: User, sign: Sign,
) -> None:
    _, owner = make_exhibitor(fair)
    project = make_project(fair, user=owner)
    intent = sign(project, buyer, 100, key="before-withdrawing")
    exhibitor_service.withdraw_project(project, user=owner)
    assert sign(project, buyer, 100, key="before-withdrawing").id == intent.id
    with pytest.raises(NotFound):
        sign(project, buyer, 100, key="after-withdrawing")


def dumped_without_a_query(intent: Intent) -> dict[str, Any]:
    """The API's answer for an intent, checked to run no SQL: nothing is loaded again for it."""
    statements: list[object] = []

    def record(*args: object) -> None:
        statements.append(args[2])

    event.listen(Engine, "before_cursor_execute", record)
    try:
        answer: dict[str, Any] = schemas.DealSchema().dump(intent)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert statements == []
    return answer


def as_stored(intent_id: int) -> dict[str, Any]:
    db.session.expire_all()
    stored: dict[str, Any] = schemas.DealSchema().dump(db.session.get(Intent, intent_id))
    return stored


def test_the_answer_is_the_intent_as_stored(
    project: Project, buyer: User, sign: Sign
) -> None:
    answer = dumped_without_a_query(sign(project, buyer, 100, note="备注"))
    assert answer == as_stored(answer["id"])
    assert answer["project"] == {"id": project.id, "title": project.title}


def test_the_answer_to_a_withdrawal_is_the_intent_as_stored(
    project: Project, buyer: User, sign: Sign
) -> None:
    intent = sign(project, buyer, 100)
    db.session.expire_all()
    intent = db.session.get(Intent, intent.id)
    answer = dumped_without_a_query(service.withdraw_intent(intent, buyer=buyer))
    assert answer["status"] == "withdrawn"
    assert answer == as_stored(answer["id"])


def test_a_request_whose_key_collides_answers_with_the_earlier_intent(
    project: Project, buyer: User, sign: Sign, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = sign(project, buyer, 100, key="raced")
    before = snapshot()
    real_replay = service._replay
    calls: list[int] = []

    def replay(*args: Any) -> Intent | None:
        calls.append(1)
        return real_replay(*args)

    monkeypatch.setattr(service, "_replay", replay)
    assert sign(project, buyer, 100, key="raced").id == winner.id
    assert len(calls) == 1  # looked up once the insert met the unique index
    assert snapshot() == before


class Deadlock(Exception):
    sqlstate = "40P01"


def test_a_deadlock_is_retried_and_records_one_intent(
    project: Project, buyer: User, sign: Sign, monkeypatch: pytest.MonkeyPatch,
    broadcasts: BroadcastRecorder,
) -> None:
    real_write = deal_signing.write_intent
    failures = iter([OperationalError("UPDATE fair_totals", {}, Deadlock())])

    def write_once_failing(values: dict[str, Any], **key: str) -> Any:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_write(values, **key)

    monkeypatch.setattr(deal_signing, "write_intent", write_once_failing)
    with broadcasts.expect(3):
        intent = sign(project, buyer, 700)
    assert snapshot() == (1, 1, 1)
    assert intent.amount_fen == 700


def test_a_conflict_that_never_clears_answers_busy_and_records_nothing(
    project: Project, buyer: User, sign: Sign, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_deadlocked(values: dict[str, Any], **key: str) -> Any:
        raise OperationalError("UPDATE fair_totals", {}, Deadlock())

    monkeypatch.setattr(deal_signing, "write_intent", always_deadlocked)
    monkeypatch.setattr(fair_database.time, "sleep", lambda seconds: None)
    with pytest.raises(Conflict) as refused:
        sign(project, buyer, 700)
    assert refused.value.code == "busy"
    assert refused.value.headers == {"Retry-After": "1"}
    assert snapshot()[:2] == (0, 0)


def test_other_database_errors_are_not_retried(
    project: Project, buyer: User, sign: Sign, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    def broken(values: dict[str, Any], **key: str) -> Any:
        attempts.append(1)
        raise OperationalError("UPDATE fair_totals", {}, Exception("disk full"))

    monkeypatch.setattr(deal_signing, "write_intent", broken)
    with pytest.raises(OperationalError):
        sign(project, buyer, 700)
    assert len(attempts) == 1


def test_signing_broadcasts_the_deal_and_the_totals_after_commit(
    project: Project, buyer: User, sign: Sign, fair: Fair, broadcasts: BroadcastRecorder
) -> None:
    with broadcasts.expect(3) as sent:
        intent = sign(project, buyer, 8_800_000)
    deals, totals, totals_for_halls = sent
    assert deals.event == "deals"
    assert deals.rooms == {fair_room(fair.id), dashboard_room(fair.id)}
    assert deals.payload == {"fair_id": fair.id, "deals": [{
        "id": intent.id, "hall_id": None, "project": {"id": project.id, "title": project.title},
        "buyer_province": "CN-CQ", "amount": "88000.00",
        "created_at": deals.payload["deals"][0]["created_at"], "secured": False,
    }]}
    assert (totals.event, totals.rooms) == ("totals", {dashboard_room(fair.id)})
    assert totals.payload == deal_totals.read_totals(fair.id)
    assert totals.payload["seq"] == 1
    assert (totals_for_halls.event, totals_for_halls.rooms) == ("totals", {fair_room(fair.id)})


def test_refusals_and_replays_broadcast_nothing(
    project: Project, buyer: User, sign: Sign, broadcasts: BroadcastRecorder
) -> None:
    sign(project, buyer, 100, key="once")
    with broadcasts.expect(3):
        pass  # what the first intent queued
    with broadcasts.expect(0):
        sign(project, buyer, 100, key="once")
        with pytest.raises(FairError):
            sign(project, buyer, 0)


def test_a_buyer_withdraws_an_intent_which_leaves_the_totals(
    project: Project, buyer: User, sign: Sign, fair: Fair, broadcasts: BroadcastRecorder
) -> None:
    kept = sign(project, buyer, 300)
    gone = sign(project, buyer, 4_000)
    with broadcasts.expect(3):
        pass  # the two deals, coalesced, and the latest totals (for dashboards and halls)
    with broadcasts.expect(2) as sent:
        withdrawn = service.withdraw_intent(gone, buyer=buyer)
    assert withdrawn.status is IntentStatus.withdrawn
    assert withdrawn.withdrawn_at is not None
    totals = deal_totals.read_totals(fair.id)
    assert sent[0].event == "totals"
    assert sent[0].payload == totals
    assert (totals["seq"], totals["amount"], totals["deal_count"]) == (3, "3.00", 1)
    assert kept.status is IntentStatus.active


def test_withdrawing_twice_changes_nothing_the_second_time(
    project: Project, buyer: User, sign: Sign, fair: Fair, broadcasts: BroadcastRecorder
) -> None:
    intent = sign(project, buyer, 300)
    service.withdraw_intent(intent, buyer=buyer)
    totals = deal_totals.read_totals(fair.id)
    with broadcasts.expect(3):
        pass  # the deal, and the totals after the first withdrawal
    with broadcasts.expect(0):
        again = service.withdraw_intent(db.session.get(Intent, intent.id), buyer=buyer)
    assert again.status is IntentStatus.withdrawn
    assert deal_totals.read_totals(fair.id) == totals


def test_a_withdrawal_that_lost_the_race_changes_nothing(
    project: Project, buyer: User, sign: Sign, fair: Fair, broadcasts: BroadcastRecorder
) -> None:
    intent = sign(project, buyer, 300)
    totals = deal_totals.read_totals(fair.id)
    assert intent.is_active
    # Another request withdrew it after this one had loaded it, while this one waited.
    with db.engine.begin() as other:
        other.execute(update(Intent).values(status=IntentStatus.withdrawn))
    with broadcasts.expect(3):
        pass  # the deal, and its totals
    with broadcasts.expect(0):
        service.withdraw_intent(intent, buyer=buyer)
    assert deal_totals.read_totals(fair.id) == totals


def test_only_its_buyer_withdraws_an_intent(
    fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], buyer: User, make_buyer: Callable[..., User],
    organiser: User, sign: Sign,
) -> None:
    _, owner = make_exhibitor(fair)
    intent = sign(make_project(fair, user=owner), buyer, 300)
    for user in (make_buyer(), organiser, owner):
        with pytest.raises(Forbidden):
            service.withdraw_intent(intent, buyer=user)
    with pytest.raises(Unauthorized):
        service.withdraw_intent(intent, buyer=None)
    assert intent.status is IntentStatus.active


def test_who_may_see_an_intent(
    fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], buyer: User, make_buyer: Callable[..., User],
    organiser: User, sign: Sign,
) -> None:
    _, owner = make_exhibitor(fair)
    _, other_exhibitor = make_exhibitor(fair)
    intent = sign(make_project(fair, user=owner), buyer, 300)
    for user in (buyer, owner, organiser):
        assert service.access_intent(intent.id, user).id == intent.id
    for user in (make_buyer(), other_exhibitor):
        with pytest.raises(NotFound):
            service.access_intent(intent.id, user)
    with pytest.raises(Unauthorized):
        service.access_intent(intent.id, None)
    with pytest.raises(NotFound):
        service.access_intent(999_999, organiser)


def test_lists_show_each_role_its_intents(
    fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], make_buyer: Callable[..., User], organiser: User,
    make_user: Callable[..., User], sign: Sign,
) -> None:
    _, first_owner = make_exhibitor(fair)
    _, second_owner = make_exhibitor(fair)
    first, second = make_project(fair, user=first_owner), make_project(fair, user=second_owner)
    alice, bob = make_buyer(), make_buyer()
    a1 = sign(first, alice, 100)
    b1 = sign(first, bob, 200)
    a2 = sign(second, alice, 300)

    def ids(user: User | None) -> list[int]:
        return [intent.id for intent in service.list_intents(fair, user=user).items]

    assert ids(organiser) == [a2.id, b1.id, a1.id]
    assert ids(first_owner) == [b1.id, a1.id]
    assert ids(second_owner) == [a2.id]
    assert ids(alice) == [a2.id, a1.id]
    assert ids(make_user(Role.exhibitor)) == []
    with pytest.raises(Unauthorized):
        ids(None)
    page = service.list_intents(fair, user=organiser, page=2, per_page=2)
    assert (page.total, [intent.id for intent in page.items]) == (3, [a1.id])
    assert [intent.id for intent in service.export_intents(fair, user=alice)] == [a1.id, a2.id]


def test_the_summary_counts_active_intents_only(
    project: Project, buyer: User, sign: Sign, fair: Fair
) -> None:
    sign(project, buyer, 100)
    service.withdraw_intent(sign(project, buyer, 1_000), buyer=buyer)
    sign(project, buyer, 50)
    summary = service.summarise_intents(fair, user=buyer)
    assert (summary.deal_count, summary.amount_fen) == (2, 100 + 50)


def test_every_refusal_of_the_database_has_an_answer() -> None:
    answers = {reason: deal_signing.Refused(reason).answer() for reason in deal_signing.REFUSALS}
    assert {reason: (answer.status, answer.code) for reason, answer in answers.items()} == {
        "no_project": (404, "not_found"),
        "hall_not_in_fair": (422, "invalid"),
        "project_not_published": (404, "not_found"),
        "fair_not_open": (409, "fair_not_open"),
    }
