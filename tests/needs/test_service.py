"""needs.service: the life of a need, responses and their refusals, signing, matching,
deadlines, search."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from deals.models import FairTotals, Intent
from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.database import utcnow
from fair.errors import Conflict, Forbidden, InvalidInput, NotFound
from fair.extensions import db
from fair.models import Fair
from inbox.models import Notification
from needs import service
from needs.models import Need, NeedMatch, NeedResponse, NeedStatus, ResponseStatus
from tests.needs.conftest import need_fields


def notes(user: User) -> list[str]:
    return list(db.session.scalars(select(Notification.kind).where(
        Notification.user_id == user.id).order_by(Notification.id)))


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


# --- Needs --------------------------------------------------------------------------------------


def test_a_verified_buyer_publishes_a_sanitised_need(make_need: Callable[..., Need]) -> None:
    need = make_need()
    assert need.status is NeedStatus.open
    assert need.opened_at is not None
    assert "<strong>非遗</strong>" in need.description_html
    assert "script" not in need.description_html
    assert need.budget_min_fen == 5_000_000


def test_an_unverified_buyer_cannot_publish(fair: Fair, make_user: Callable[..., User],
                                            verify: Callable[[User], User]) -> None:
    with pytest.raises(Forbidden) as refused:
        service.create_need(fair, buyer=make_user(Role.buyer, verified=False), **need_fields())
    assert refused.value.code == "not_verified"
    assert count(Need) == 0


@pytest.mark.parametrize(("overrides", "field"), [
    ({"budget_min_fen": 9_000_000}, "budget_max"),
    ({"deadline": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, "deadline"),
    ({"max_responses": 0}, "max_responses"),
    ({"category": "juggling"}, "category"),
    ({"province": "CN-XX"}, "province"),
])
def test_bad_needs_are_refused_and_store_nothing(
    fair: Fair, buyer: User, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        service.create_need(fair, buyer=buyer, **need_fields(**overrides))
    assert field in refused.value.fields
    assert count(Need) == 0


def test_draft_opens_closes_and_withdrawn_ones_leave_the_list(
    fair: Fair, buyer: User, make_need: Callable[..., Need]
) -> None:
    draft = make_need(publish=False)
    assert service.search_needs(fair, query=service.NeedQuery()).total == 0
    service.open_need(draft, buyer=buyer)
    assert service.search_needs(fair, query=service.NeedQuery()).total == 1
    service.close_need(draft, buyer=buyer)
    assert draft.status is NeedStatus.closed
    with pytest.raises(Conflict):
        service.close_need(draft, buyer=buyer)
    other = make_need()
    service.withdraw_need(other, buyer=buyer)
    page = service.search_needs(fair, query=service.NeedQuery())
    assert [need.id for need in page.items] == [draft.id]


def test_only_its_buyer_changes_a_need(make_need: Callable[..., Need],
                                       make_user: Callable[..., User],
                                       verify: Callable[[User], User]) -> None:
    need = make_need()
    with pytest.raises(Forbidden):
        service.close_need(need, buyer=verify(make_user(Role.buyer)))


def test_search_finds_chinese_words_and_counts_facets(
    fair: Fair, make_need: Callable[..., Need]
) -> None:
    make_need()
    make_need(title="景区研学旅游线路采购", category="tourism", province="CN-SC",
              budget_min_fen=100_000_00, budget_max_fen=200_000_00, description="")
    found = service.search_needs(fair, query=service.NeedQuery(q="非遗"))
    assert [need.title for need in found.items] == ["非遗手工体验课进校园"]
    assert found.facets["category"]["intangible-heritage"] == 1
    assert found.facets["category"]["tourism"] == 0
    by_province = service.search_needs(fair, query=service.NeedQuery(province="CN-SC"))
    assert [need.category for need in by_province.items] == ["tourism"]
    assert by_province.facets["province"] == {"CN-SC": 1, "CN-CQ": 1}
    cheap = service.search_needs(fair, query=service.NeedQuery(max_budget_fen=6_000_000))
    assert [need.category for need in cheap.items] == ["intangible-heritage"]
    assert service.search_needs(fair, query=service.NeedQuery(q="川剧")).total == 0


# --- Responses ----------------------------------------------------------------------------------


@pytest.fixture
def offer(fair: Fair, make_project: Callable[..., Project]) -> tuple[Project, User]:
    project = make_project(fair, title="蜀绣非遗手工课", category="intangible-heritage",
                           price_fen=6_000_000)
    owner = db.session.scalars(select(User).where(
        User.organisation_id == project.exhibitor.organisation_id)).one()
    return project, owner


def test_an_exhibitor_responds_and_the_buyer_is_told(
    make_need: Callable[..., Need], offer: tuple[Project, User], buyer: User
) -> None:
    need = make_need()
    project, owner = offer
    response = service.respond_to_need(need, user=owner, project_id=project.id,
                                       price_fen=6_500_000, note=" 可上门 ")
    assert response.note == "可上门"
    assert need.response_count == 1 or db.session.get(Need, need.id).response_count == 1
    assert notes(buyer) == ["response_received"]


def test_responding_refusals(
    fair: Fair, make_need: Callable[..., Need], offer: tuple[Project, User], buyer: User,
    make_project: Callable[..., Project],
) -> None:
    need = make_need()
    project, owner = offer
    service.respond_to_need(need, user=owner, project_id=project.id, price_fen=6_000_000)
    with pytest.raises(Conflict) as twice:
        service.respond_to_need(need, user=owner, project_id=project.id, price_fen=1)
    assert twice.value.code == "already_responded"
    stranger = make_project(fair, title="别人的项目")
    with pytest.raises(Forbidden):
        service.respond_to_need(need, user=owner, project_id=stranger.id, price_fen=100)
    service.close_need(need, buyer=buyer)
    other = make_project(fair, user=owner, title="另一个项目")
    with pytest.raises(Conflict) as closed:
        service.respond_to_need(need, user=owner, project_id=other.id, price_fen=100)
    assert closed.value.code == "need_not_open"
    assert count(NeedResponse) == 1


def test_no_more_responses_than_the_need_allows(
    fair: Fair, make_need: Callable[..., Need], make_project: Callable[..., Project]
) -> None:
    need = make_need(max_responses=1)
    first, second = (make_project(fair, title=title) for title in ("甲项目", "乙项目"))
    for project in (first, second):
        project.exhibitor  # noqa: B018 - loaded before the use case expires it
    owners = [db.session.scalars(select(User).where(
        User.organisation_id == project.exhibitor.organisation_id)).one()
        for project in (first, second)]
    service.respond_to_need(need, user=owners[0], project_id=first.id, price_fen=100)
    with pytest.raises(Conflict) as full:
        service.respond_to_need(need, user=owners[1], project_id=second.id, price_fen=100)
    assert full.value.code == "need_full"
    assert count(NeedResponse) == 1


def test_a_past_deadline_refuses_responses_before_the_task_runs(
    make_need: Callable[..., Need], offer: tuple[Project, User],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    need = make_need()
    project, owner = offer
    later = utcnow() + dt.timedelta(days=8)
    monkeypatch.setattr("needs.models.utcnow", lambda: later)
    with pytest.raises(Conflict):
        service.respond_to_need(need, user=owner, project_id=project.id, price_fen=100)


def test_responses_are_editable_until_the_buyer_acts(
    make_need: Callable[..., Need], offer: tuple[Project, User], buyer: User
) -> None:
    need = make_need()
    project, owner = offer
    response = service.respond_to_need(need, user=owner, project_id=project.id,
                                       price_fen=6_000_000)
    service.update_response(response, user=owner, price_fen=5_900_000)
    assert response.price_fen == 5_900_000
    service.shortlist_response(response, buyer=buyer)
    assert response.status is ResponseStatus.shortlisted
    assert notes(owner) [-1:] == ["response_shortlisted"]
    with pytest.raises(Conflict):
        service.update_response(response, user=owner, note="再便宜些")


def test_responses_are_seen_by_the_buyer_the_responder_and_organisers_only(
    fair: Fair, make_need: Callable[..., Need], offer: tuple[Project, User], buyer: User,
    organiser: User, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    need = make_need()
    project, owner = offer
    response = service.respond_to_need(need, user=owner, project_id=project.id, price_fen=100)
    _, rival = make_exhibitor(fair)
    assert service.list_responses(need, user=buyer) == [response]
    assert service.list_responses(need, user=organiser) == [response]
    assert service.list_responses(need, user=owner) == [response]
    assert service.list_responses(need, user=rival) == []
    assert service.access_response(response.id, owner) is response
    with pytest.raises(NotFound, match="没有这条响应"):
        service.access_response(response.id, rival)


# --- Signing ------------------------------------------------------------------------------------


def test_a_response_becomes_an_intent_through_the_signing_path(
    fair: Fair, make_need: Callable[..., Need], offer: tuple[Project, User], buyer: User,
) -> None:
    need = make_need()
    project, owner = offer
    response = service.respond_to_need(need, user=owner, project_id=project.id,
                                       price_fen=6_200_000)
    intent = service.sign_response(response, buyer=buyer, idempotency_key="need-1")
    again = service.sign_response(response, buyer=buyer, idempotency_key="need-1")
    assert again.id == intent.id
    assert (intent.need_id, intent.response_id, intent.amount_fen) == (
        need.id, response.id, 6_200_000)
    totals = db.session.get(FairTotals, fair.id)
    assert totals is not None
    assert (totals.amount_fen, totals.deal_count) == (6_200_000, 1)
    assert count(Intent) == 1
    with pytest.raises(Conflict) as twice:
        service.sign_response(response, buyer=buyer, idempotency_key="need-2")
    assert twice.value.code == "already_signed"
    assert "response_signed" in notes(owner)
    assert [signed.id for signed in service.signed_intents(need, user=buyer)] == [intent.id]


def test_a_declined_response_cannot_become_an_intent(
    make_need: Callable[..., Need], offer: tuple[Project, User], buyer: User
) -> None:
    need = make_need()
    project, owner = offer
    response = service.respond_to_need(need, user=owner, project_id=project.id, price_fen=100)
    service.decline_response(response, buyer=buyer)
    assert notes(owner)[-1:] == ["response_declined"]
    with pytest.raises(Conflict) as refused:
        service.sign_response(response, buyer=buyer, idempotency_key="k")
    assert refused.value.code == "response_declined"
    assert count(Intent) == 0


def test_only_the_needs_buyer_signs_a_response(
    make_need: Callable[..., Need], offer: tuple[Project, User],
    make_user: Callable[..., User], verify: Callable[[User], User],
) -> None:
    need = make_need()
    project, owner = offer
    response = service.respond_to_need(need, user=owner, project_id=project.id, price_fen=100)
    with pytest.raises(Forbidden):
        service.sign_response(response, buyer=verify(make_user(Role.buyer)),
                              idempotency_key="k")
    assert count(Intent) == 0


# --- Matching -----------------------------------------------------------------------------------


def test_opening_a_need_tells_the_best_matching_exhibitors_once(
    fair: Fair, buyer: User, make_project: Callable[..., Project],
    make_need: Callable[..., Need], app: object,
) -> None:
    heritage = make_project(fair, title="非遗手工体验课", category="intangible-heritage",
                            price_fen=6_000_000, province="CN-CQ")
    words = make_project(fair, title="手工体验课进校园", category="training",
                         price_fen=90_000_000)
    make_project(fair, title="川剧变脸", category="performance")
    need = make_need()
    matches = db.session.scalars(select(NeedMatch).order_by(NeedMatch.score.desc())).all()
    assert [match.project_id for match in matches] == [heritage.id, words.id]
    owner = db.session.scalars(select(User).where(
        User.organisation_id == heritage.exhibitor.organisation_id)).one()
    assert notes(owner) == ["need_matched"]
    assert service.match_need(need.id) == []  # again: nobody is told twice
    assert notes(owner) == ["need_matched"]
    assert [match.need_id for match in service.matching_needs(fair, user=owner)] == [need.id]


def test_matching_tells_at_most_the_limit(
    fair: Fair, make_project: Callable[..., Project], make_need: Callable[..., Need]
) -> None:
    for number in range(3):
        make_project(fair, title=f"非遗课程{number}", category="intangible-heritage")
    need = make_need(publish=False)
    db.session.execute(NeedMatch.__table__.delete())
    need.status = NeedStatus.open
    db.session.commit()
    assert len(service.match_need(need.id, limit=2)) == 2


# --- Deadlines ----------------------------------------------------------------------------------


def test_needs_close_at_their_deadline_and_buyers_are_warned_a_day_before(
    make_need: Callable[..., Need], buyer: User
) -> None:
    soon = make_need(deadline=utcnow() + dt.timedelta(hours=20))
    later = make_need(deadline=utcnow() + dt.timedelta(days=5))
    assert service.pass_deadlines() == (0, 1)
    assert service.pass_deadlines() == (0, 0)  # told once
    assert notes(buyer) == ["need_closing"]
    assert service.pass_deadlines(utcnow() + dt.timedelta(days=1)) == (1, 0)
    assert db.session.get(Need, soon.id).status is NeedStatus.closed
    assert db.session.get(Need, later.id).status is NeedStatus.open


def test_a_deadline_at_the_edge_of_the_calendar_is_refused(fair: Fair, buyer: User) -> None:
    edge = dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    with pytest.raises(InvalidInput) as refused:
        service.create_need(fair, buyer=buyer, **need_fields(deadline=edge))
    assert "deadline" in refused.value.fields


def test_a_draft_is_edited_field_by_field_and_reindexed(
    fair: Fair, buyer: User, make_need: Callable[..., Need]
) -> None:
    draft = make_need(publish=False)
    db.session.expire_all()
    service.update_need(db.session.get(Need, draft.id), buyer=buyer,
                        changes={"title": "川剧进社区演出"})
    service.open_need(db.session.get(Need, draft.id), buyer=buyer)
    assert service.search_needs(fair, query=service.NeedQuery(q="川剧")).total == 1
    with pytest.raises(Conflict):
        service.update_need(db.session.get(Need, draft.id), buyer=buyer,
                            changes={"title": "再改"})
