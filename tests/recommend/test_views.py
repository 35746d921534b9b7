"""The pages: 猜你喜欢 on the home page and the catalogue, "also" on a project page, a click
counted through /recommended/<id>, the showing of a list recorded."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from audience import service as audience_service
from audience.models import Event, Kind
from deals import service as deal_service
from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from recommend import service
from tests.pages import sign_in

_keys = itertools.count()


def test_home_and_catalogue_show_the_strip_with_reasons_and_record_it(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project],
    make_user: Callable[..., User],
) -> None:
    shu = make_project(fair, title="蜀绣非遗技艺体验课", category="intangible-heritage")
    zhu = make_project(fair, title="竹编非遗工坊", category="intangible-heritage")
    make_project(fair, title="民族音乐会", category="performance")
    buyer = make_user(Role.buyer)
    service.rebuild(fair.id)
    sign_in(client, buyer)
    audience_service.favourite_project(shu.id, user=buyer,
                                       actor=audience_service.Actor.of(buyer, None))

    home = client.get("/")
    assert 'data-testid="recommendations"' in home.text
    assert "猜你喜欢" in home.text
    assert f'data-testid="rec-{zhu.id}"' in home.text
    assert "因为您收藏了「蜀绣非遗技艺体验课」" in home.text
    catalogue = client.get("/catalogue")
    assert 'data-testid="recommendations"' in catalogue.text
    assert "您常看的类别：非遗" in catalogue.text
    assert "You may like" in client.get("/?lang=en").text
    shown = db.session.scalars(select(Event).where(
        Event.kind == Kind.recommendation_shown.value)).all()
    assert len(shown) == 3
    assert shown[0].user_id == buyer.id
    assert zhu.id in shown[0].data["projects"]


def test_a_recommendation_opened_is_counted_and_leads_to_the_project(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project],
) -> None:
    project = make_project(fair)
    response = client.get(f"/recommended/{project.id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/projects/{project.id}")
    clicks = db.session.scalars(select(Event).where(
        Event.kind == Kind.recommendation_click.value)).all()
    assert [(click.project_id, click.fair_id) for click in clicks] == [(project.id, fair.id)]
    assert client.get("/recommended/999").status_code == 404
    # Under Do-Not-Track the link still works and nothing is recorded.
    assert client.get(f"/recommended/{project.id}", headers={"DNT": "1"}).status_code == 302
    assert db.session.scalar(select(db.func.count()).select_from(Event).where(
        Event.kind == Kind.recommendation_click.value)) == 1


def test_a_project_page_shows_what_three_buyers_also_signed(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project],
    make_user: Callable[..., User],
) -> None:
    opera = make_project(fair, title="川剧折子戏专场演出")
    music = make_project(fair, title="民族音乐会")
    for _ in range(3):
        buyer = make_user(Role.buyer)
        for project in (opera, music):
            deal_service.record_intent(project.id, buyer=buyer, amount_fen=100_000,
                                       idempotency_key=f"page-{next(_keys)}")
    service.rebuild(fair.id)
    page = client.get(f"/projects/{opera.id}")
    assert 'data-testid="also-signed"' in page.text
    assert "采购商还签了" in page.text
    assert "3 位采购商两个都签了" in page.text
    assert "民族音乐会" in page.text


def test_the_portrait_counts_recommendations_shown_clicked_and_signed_per_week(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project],
    make_user: Callable[..., User], organiser: User,
    token_for: Callable[[User], dict[str, str]],
) -> None:
    project, other = make_project(fair), make_project(fair, title="民族音乐会")
    early, buyer, browser = (make_user(Role.buyer) for _ in range(3))
    as_organiser, as_buyer = token_for(organiser), token_for(buyer)  # before any cookie
    # Signed before any recommendation was opened: not the recommendations' doing.
    deal_service.record_intent(project.id, buyer=early, amount_fen=100_000,
                               idempotency_key=f"page-{next(_keys)}")
    service.rebuild(fair.id)
    for user in (early, buyer, browser):
        sign_in(client, user)
        client.get("/")  # a strip shown
        client.get(f"/recommended/{project.id}")  # and a project opened from it
    deal_service.record_intent(project.id, buyer=buyer, amount_fen=100_000,
                               idempotency_key=f"page-{next(_keys)}")
    deal_service.record_intent(other.id, buyer=browser, amount_fen=100_000,
                               idempotency_key=f"page-{next(_keys)}")

    body = client.get(f"/api/v1/fairs/{fair.id}/insights/recommendations",
                      headers=as_organiser).json
    assert [(week["shown"], week["clicked"], week["intents"]) for week in body["weeks"]] == [
        (3, 3, 1)]
    assert client.get(f"/api/v1/fairs/{fair.id}/insights/recommendations",
                      headers=as_buyer).status_code == 403
    sign_in(client, organiser)
    page = client.get(f"/fairs/{fair.id}/insights")
    assert 'data-testid="recommendations-by-week"' in page.text
    assert "<td>3</td><td>3</td><td>1</td>" in page.text
