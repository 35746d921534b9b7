"""What a buyer or a visitor is recommended, and why: the never-recommend rules, reasons that
count three buyers or more, cold buyers and projects, and rebuilding while serving."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest
from flask import Flask, current_app
from flask_babel import force_locale
from sqlalchemy import select

from audience import service as audience_service
from audience.models import Kind
from deals import service as deal_service
from exhibitors import service as exhibitor_service
from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair, FairStatus
from recommend import service
from recommend.models import StoredModel

_keys = itertools.count()


@pytest.fixture
def sign(app: Flask) -> Callable[[User, Project], None]:
    def sign(buyer: User, project: Project) -> None:
        deal_service.record_intent(project.id, buyer=buyer, amount_fen=100_000,
                                   idempotency_key=f"test-{next(_keys)}")

    return sign


def view(buyer: User, project: Project) -> None:
    audience_service.write_events([audience_service.event_row(
        Kind.view, fair_id=project.fair_id, actor=audience_service.Actor.of(buyer, None),
        project_id=project.id, category=project.category)])


def favourite(buyer: User, project: Project) -> None:
    audience_service.favourite_project(project.id, user=buyer,
                                       actor=audience_service.Actor.of(buyer, None))


def recommended(buyer: User, fair: Fair, limit: int = 10) -> list[service.Recommendation]:
    # Reasons are written in the request's language.
    with current_app.test_request_context():
        return service.recommendations_for(
            fair.id, actor=audience_service.Actor.of(buyer, None), limit=limit)


def ids(found: list[service.Recommendation]) -> list[int]:
    return [item.project.id for item in found]


def reasons(found: list[service.Recommendation], project: Project) -> list[str]:
    return next(
        [reason.text for reason in item.reasons] for item in found if item.project.id == project.id
    )


def withdraw(project: Project) -> None:
    owner = db.session.scalar(select(User).where(
        User.organisation_id == project.exhibitor.organisation_id))
    exhibitor_service.withdraw_project(project, user=owner)


@pytest.fixture
def catalogue(fair: Fair, make_project: Callable[..., Project]) -> dict[str, Project]:
    """A small fair: three 非遗 projects, two performances, two tourism projects."""
    specs = {
        "shu": ("蜀绣非遗技艺体验课", "intangible-heritage", "蜀绣传承人带来的非遗刺绣体验。"),
        "bian": ("川剧变脸非遗展演", "intangible-heritage", "川剧变脸非遗绝活现场展示。"),
        "zhu": ("竹编非遗工坊", "intangible-heritage", "青神竹编非遗手工艺工坊。"),
        "opera": ("川剧折子戏专场演出", "performance", "经典川剧折子戏，适合文化馆驻场。"),
        "music": ("民族音乐会", "performance", "民族管弦乐团音乐会。"),
        "trip": ("都江堰研学旅游线路", "tourism", "世界遗产研学一日游。"),
        "trip2": ("青城山康养旅游", "tourism", "道教名山康养旅游线路。"),
    }
    return {key: make_project(fair, title=title, category=category, summary=summary)
            for key, (title, category, summary) in specs.items()}


def test_never_a_project_the_buyer_signed_nor_one_withdrawn_after_the_build(
    app: Flask, fair: Fair, catalogue: dict[str, Project], make_user: Callable[..., User],
    sign: Callable[[User, Project], None],
) -> None:
    buyer = make_user(Role.buyer, province="CN-CQ")
    others = [make_user(Role.buyer, province="CN-CQ") for _ in range(3)]
    for other in others:
        sign(other, catalogue["shu"])
        sign(other, catalogue["bian"])
    sign(buyer, catalogue["shu"])
    service.rebuild(fair.id)
    before = ids(recommended(buyer, fair))
    assert catalogue["bian"].id in before
    assert catalogue["shu"].id not in before

    withdraw(catalogue["bian"])

    after = ids(recommended(buyer, fair))
    assert catalogue["bian"].id not in after
    assert catalogue["shu"].id not in after
    assert set(after) <= {p.id for p in catalogue.values()} - {catalogue["bian"].id}


def test_a_province_reason_counts_three_buyers_or_more_never_fewer(
    app: Flask, fair: Fair, catalogue: dict[str, Project], make_user: Callable[..., User],
    sign: Callable[[User, Project], None],
) -> None:
    buyer = make_user(Role.buyer, province="CN-CQ")
    chongqing = [make_user(Role.buyer, province="CN-CQ") for _ in range(3)]
    for other in chongqing[:2]:
        sign(other, catalogue["trip"])
    service.rebuild(fair.id)
    two = recommended(buyer, fair)
    assert catalogue["trip"].id == ids(two)[0]  # province popularity ranks it first
    assert all(reason.code != "province_signed" for item in two for reason in item.reasons)
    assert not any("位采购商" in text for item in two for text in reasons(two, item.project))

    sign(chongqing[2], catalogue["trip"])
    service.rebuild(fair.id)
    three = recommended(buyer, fair)
    assert "重庆市的 3 位采购商也签约了此项目" in reasons(three, catalogue["trip"])
    with current_app.test_request_context(), force_locale("en"):
        english = service.recommendations_for(
            fair.id, actor=audience_service.Actor.of(buyer, None), limit=10)
    assert "3 buyers from Chongqing also signed for this project" in reasons(
        english, catalogue["trip"])


def test_buyers_also_signed_needs_three_buyers_who_signed_both(
    app: Flask, fair: Fair, catalogue: dict[str, Project], make_user: Callable[..., User],
    sign: Callable[[User, Project], None],
) -> None:
    buyers = [make_user(Role.buyer) for _ in range(3)]
    for buyer in buyers[:2]:
        sign(buyer, catalogue["opera"])
        sign(buyer, catalogue["music"])
    service.rebuild(fair.id)
    assert service.also_for(catalogue["opera"]).signed == []

    sign(buyers[2], catalogue["opera"])
    sign(buyers[2], catalogue["music"])
    service.rebuild(fair.id)
    also = service.also_for(catalogue["opera"])
    assert [(project.id, count) for project, count in also.signed] == [(catalogue["music"].id, 3)]
    # A buyer who signed it already is not shown it again.
    own = service.also_for(catalogue["opera"], actor=audience_service.Actor.of(buyers[0], None))
    assert own.signed == []


def test_a_buyer_who_favourited_two_heritage_projects_is_shown_heritage_with_a_reason(
    app: Flask, fair: Fair, catalogue: dict[str, Project], make_user: Callable[..., User],
) -> None:
    buyer = make_user(Role.buyer)
    favourite(buyer, catalogue["shu"])
    favourite(buyer, catalogue["bian"])
    service.rebuild(fair.id)
    found = recommended(buyer, fair, limit=3)
    assert {item.project.category for item in found} == {"intangible-heritage"}
    assert catalogue["zhu"].id in ids(found)
    texts = reasons(found, catalogue["zhu"])
    assert "您常看的类别：非遗" in texts
    assert any(text.startswith("因为您收藏了「") for text in texts)


def test_a_cold_buyer_is_served_from_its_province_and_the_categories_it_searched(
    app: Flask, fair: Fair, catalogue: dict[str, Project], make_user: Callable[..., User],
    sign: Callable[[User, Project], None],
) -> None:
    for _ in range(3):
        sign(make_user(Role.buyer, province="CN-BJ"), catalogue["music"])
    service.rebuild(fair.id)
    newcomer = make_user(Role.buyer, province="CN-BJ")
    assert ids(recommended(newcomer, fair))[0] == catalogue["music"].id

    # A search by category (the catalogue's facet) turns the list towards that category.
    audience_service.write_events([audience_service.event_row(
        Kind.search, fair_id=fair.id, actor=audience_service.Actor.of(newcomer, None),
        data=audience_service.search_data("", {"category": "tourism"}, 2))])
    found = recommended(newcomer, fair, limit=3)
    assert {catalogue["trip"].id, catalogue["trip2"].id} <= set(ids(found))
    assert "您常看的类别：旅游" in reasons(found, catalogue["trip"])


def test_a_visitor_without_history_gets_a_full_list(
    app: Flask, fair: Fair, catalogue: dict[str, Project],
) -> None:
    service.rebuild(fair.id)
    with app.test_request_context():
        found = service.recommendations_for(
            fair.id, actor=audience_service.Actor(user_id=None, visitor="f" * 32), limit=5)
    assert len(found) == 5
    assert all(item.reasons for item in found)


def test_a_cold_project_is_recommended_by_its_content(
    app: Flask, fair: Fair, catalogue: dict[str, Project], make_user: Callable[..., User],
    make_project: Callable[..., Project],
) -> None:
    buyers = [make_user(Role.buyer) for _ in range(4)]
    for buyer in buyers:  # the tourism projects are warm: viewed together by four buyers
        view(buyer, catalogue["trip"])
        view(buyer, catalogue["trip2"])
    new = make_project(fair, title="蜀绣非遗文创礼盒", category="intangible-heritage",
                       summary="蜀绣非遗图案的文创礼盒。")
    service.rebuild(fair.id)
    model = service.models().get(fair.id)
    assert model is not None
    # No one has touched the new project: its neighbours are its content's, led by 蜀绣.
    row = model.similar[model.index[new.id]]
    best = model.items[int(row.indices[row.data.argmax()])]
    assert best == catalogue["shu"].id
    fan = make_user(Role.buyer)
    favourite(fan, catalogue["shu"])
    assert new.id in ids(recommended(fan, fair, limit=3))


def test_a_rebuild_while_requests_are_served_never_answers_an_error(
    app: Flask, fair: Fair, catalogue: dict[str, Project], make_user: Callable[..., User],
    sign: Callable[[User, Project], None], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every request asks whether a newer model is stored: one reader also drops its copy
    # each time (a process starting), the other swaps in the new one from a loading thread.
    monkeypatch.setattr(service, "RECHECK_SECONDS", 0.0)
    buyer = make_user(Role.buyer, province="CN-CQ")
    for _ in range(3):
        sign(make_user(Role.buyer, province="CN-CQ"), catalogue["trip"])
    service.rebuild(fair.id)
    models = service.models()
    # Plain values for the threads: the test's objects belong to its own session.
    fair_id, actor = fair.id, audience_service.Actor.of(buyer, None)
    errors: list[BaseException] = []
    answers: list[int] = []
    stop = threading.Event()

    def serve(afresh: bool) -> None:
        with app.app_context():
            while not stop.is_set():
                try:
                    if afresh:
                        models.forget()
                    with app.test_request_context():
                        answers.append(len(service.recommendations_for(fair_id, actor=actor)))
                except BaseException as error:  # any failure fails the test
                    errors.append(error)
                    return
                finally:
                    db.session.remove()

    readers = [threading.Thread(target=serve, args=(afresh,)) for afresh in (True, False)]
    for reader in readers:
        reader.start()
    for _ in range(5):
        service.rebuild(fair_id)
    stop.set()
    for reader in readers:
        reader.join(timeout=30)
    assert errors == []
    assert answers
    assert set(answers) == {len(catalogue)}
    assert db.session.scalar(select(StoredModel.version)) == 6


def test_the_queue_rebuilds_every_open_fair_and_no_closed_one(
    app: Flask, make_fair: Callable[..., Fair], make_project: Callable[..., Project],
) -> None:
    open_fair = make_fair()
    closed = make_fair(status=FairStatus.closed, name="已闭幕的大会")
    make_project(open_fair)
    service.rebuild_open_fairs()  # the periodic task, run as its consumer would
    assert set(db.session.scalars(select(StoredModel.fair_id))) == {open_fair.id}
    service.rebuild_open_fairs()
    assert db.session.scalar(select(StoredModel.version)
                             .where(StoredModel.fair_id == open_fair.id)) == 2
    assert db.session.get(StoredModel, closed.id) is None
