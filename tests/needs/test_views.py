"""The needs pages: publish through the form, the public list, respond, decide and sign from
a need's page; the portal's matches and the header's unread count."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from deals.models import Intent
from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from needs import service as need_service
from needs.models import Need, NeedResponse, NeedStatus
from tests.pages import cookie_session, post_form


def test_a_buyer_publishes_through_the_form_and_an_exhibitor_responds(
    client: FlaskClient, fair: Fair, buyer: User, make_project: Callable[..., Project],
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    _, owner = make_exhibitor(fair)
    project = make_project(fair, user=owner, title="蜀绣非遗手工课",
                           category="intangible-heritage")
    cookie_session(client, buyer)
    assert "发布采购需求" in client.get("/needs").text
    published = post_form(client, "/needs/new", {
        "title": "非遗手工体验课进校园", "category": "intangible-heritage",
        "province": "CN-CQ", "city": "渝中区", "budget_min": "50000", "budget_max": "80000",
        "deadline": "2099-06-01T18:00", "max_responses": "5", "description": "**200** 名",
        "action": "publish"})
    assert published.status_code == 302, published.text[:3000]
    need = db.session.scalars(select(Need)).one()
    assert need.status is NeedStatus.open
    assert need.deadline.hour == 10  # 18:00 in Beijing
    listed = client.get("/needs?q=非遗")
    assert "非遗手工体验课进校园" in listed.text

    cookie_session(client, owner)
    portal = client.get("/portal")
    assert "非遗手工体验课进校园" in portal.text  # among the matches
    page = client.get(f"/needs/{need.id}")
    assert "以项目响应" in page.text
    answered = post_form(client, f"/needs/{need.id}/respond",
                         {"project_id": str(project.id), "price": "60000.00", "note": "含材料"})
    assert answered.status_code == 302
    response = db.session.scalars(select(NeedResponse)).one()

    cookie_session(client, buyer)
    page = client.get(f"/needs/{need.id}")
    assert "蜀绣非遗手工课" in page.text
    assert 'data-testid="unread"' in page.text
    signed = post_form(client, f"/responses/{response.id}/intent", {"key": "page-key-1"})
    assert signed.status_code == 302
    again = post_form(client, f"/responses/{response.id}/intent", {"key": "page-key-1"})
    assert again.status_code == 302
    intents = db.session.scalars(select(Intent)).all()
    assert [(intent.need_id, intent.response_id) for intent in intents] == [
        (need.id, response.id)]
    assert "由本需求达成的签约意向" in client.get(f"/needs/{need.id}").text


def test_a_bad_form_is_shown_again_with_its_errors_and_stores_nothing(
    client: FlaskClient, fair: Fair, buyer: User
) -> None:
    cookie_session(client, buyer)
    refused = post_form(client, "/needs/new", {
        "title": "演出", "category": "performance", "province": "CN-CQ",
        "budget_min": "90000", "budget_max": "80000", "deadline": "2099-06-01T18:00",
        "max_responses": "5", "action": "publish"})
    assert refused.status_code == 200
    assert "budget_max" in refused.text
    assert db.session.scalars(select(Need)).all() == []


def test_an_unverified_buyer_gets_no_form(client: FlaskClient, fair: Fair,
                                          make_user: Callable[..., User],
                                          verify: Callable[[User], User]) -> None:
    cookie_session(client, make_user(Role.buyer, verified=False))
    assert "/needs/new" not in client.get("/needs").text
    assert client.get("/needs/new").status_code == 403


def test_the_inbox_lists_and_marks_read(client: FlaskClient, fair: Fair, buyer: User,
                                        make_project: Callable[..., Project],
                                        make_exhibitor: Callable[..., tuple[Exhibitor, User]],
                                        make_need: Callable[..., Need]) -> None:
    from needs import service

    need = make_need()
    _, owner = make_exhibitor(fair)
    project = make_project(fair, user=owner, title="竹编非遗")
    service.respond_to_need(need, user=owner, project_id=project.id, price_fen=100)
    cookie_session(client, buyer)
    inbox = client.get("/inbox")
    assert "竹编非遗" in inbox.text
    assert post_form(client, "/inbox/read").status_code == 302
    assert 'data-unread="0"' in client.get("/inbox").text


def test_a_refusal_names_the_forms_field_by_its_label_not_its_api_name(
    client: FlaskClient, fair: Fair, buyer: User,
) -> None:
    need = need_service.create_need(
        fair, buyer=buyer, title="社区文艺演出", category="performance", province="CN-CQ",
        budget_min_fen=1_000_00, budget_max_fen=2_000_00, max_responses=3,
        deadline=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    need.deadline = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # the draft waited too long
    db.session.commit()
    cookie_session(client, buyer)
    post_form(client, f"/needs/{need.id}/open", {})
    page = client.get(f"/needs/{need.id}").text
    assert "截止时间（北京时间）：截止时间须晚于现在。" in page
    assert "deadline" not in page.split("<main", 1)[1]
    assert db.session.get(Need, need.id).status is NeedStatus.draft
