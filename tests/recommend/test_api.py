"""GET /api/v1/fairs/{id}/recommendations and /projects/{id}/also: the buyer's or the visitor's
list with reasons, refusals in the fair's error shape, the OpenAPI document."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from deals import service as deal_service
from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.models import Fair
from recommend import service

_keys = itertools.count()


@pytest.fixture
def projects(fair: Fair, make_project: Callable[..., Project]) -> list[Project]:
    return [make_project(fair, title=title, category=category)
            for title, category in (("蜀绣非遗技艺体验课", "intangible-heritage"),
                                    ("竹编非遗工坊", "intangible-heritage"),
                                    ("都江堰研学旅游线路", "tourism"),
                                    ("民族音乐会", "performance"))]


def sign(buyer: User, project: Project) -> None:
    deal_service.record_intent(project.id, buyer=buyer, amount_fen=100_000,
                               idempotency_key=f"api-{next(_keys)}")


def test_a_signed_in_buyer_gets_its_list_with_reasons_and_never_what_it_signed(
    client: FlaskClient, fair: Fair, projects: list[Project], make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    buyer = make_user(Role.buyer, province="CN-CQ")
    for _ in range(3):
        sign(make_user(Role.buyer, province="CN-CQ"), projects[2])
    sign(buyer, projects[3])
    service.rebuild(fair.id)
    response = client.get(f"/api/v1/fairs/{fair.id}/recommendations?limit=2",
                          headers=token_for(buyer))
    assert response.status_code == 200, response.json
    items = response.json["items"]
    assert len(items) == 2
    assert items[0]["project"]["id"] == projects[2].id
    assert items[0]["project"]["title"] == "都江堰研学旅游线路"
    assert {"code": "province_signed", "text": "重庆市的 3 位采购商也签约了此项目"} in (
        items[0]["reasons"])
    assert all(item["project"]["id"] != projects[3].id for item in items)
    english = client.get(f"/api/v1/fairs/{fair.id}/recommendations?limit=1&lang=en",
                         headers=token_for(buyer))
    assert english.json["items"][0]["reasons"][0]["text"] == (
        "3 buyers from Chongqing also signed for this project")


def test_a_visitor_is_served_by_its_cookie(
    client: FlaskClient, fair: Fair, projects: list[Project],
) -> None:
    service.rebuild(fair.id)
    # The visitor favourites a 非遗 project: its cookie is set, and its list turns to 非遗.
    assert client.put(f"/api/v1/projects/{projects[0].id}/favourite").status_code == 204
    items = client.get(f"/api/v1/fairs/{fair.id}/recommendations?limit=1").json["items"]
    assert items[0]["project"]["id"] == projects[1].id
    reason = {"code": "favourited", "text": "因为您收藏了「蜀绣非遗技艺体验课」"}
    assert reason in items[0]["reasons"]


@pytest.mark.parametrize(("query", "status"), [
    ("limit=0", 422), ("limit=51", 422), ("limit=ten", 422),
])
def test_a_bad_limit_is_refused_in_the_fairs_error_shape(
    client: FlaskClient, fair: Fair, query: str, status: int
) -> None:
    response = client.get(f"/api/v1/fairs/{fair.id}/recommendations?{query}")
    assert response.status_code == status
    assert set(response.json["error"]) >= {"code", "message"}
    assert "limit" in response.json["error"]["fields"]


def test_an_unknown_fair_or_project_is_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/fairs/999/recommendations")
    assert response.status_code == 404
    assert response.json["error"]["code"]
    assert client.get("/api/v1/projects/999/also").status_code == 404


def test_also_lists_count_three_buyers_or_more(
    client: FlaskClient, fair: Fair, projects: list[Project], make_user: Callable[..., User],
) -> None:
    for _ in range(3):
        buyer = make_user(Role.buyer)
        sign(buyer, projects[0])
        sign(buyer, projects[1])
    service.rebuild(fair.id)
    body = client.get(f"/api/v1/projects/{projects[0].id}/also").json
    assert [(item["project"]["id"], item["buyers"]) for item in body["signed"]] == [
        (projects[1].id, 3)]


def test_the_openapi_document_describes_the_recommendations(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    operation = document["paths"]["/api/v1/fairs/{fair_id}/recommendations"]["get"]
    assert any(parameter["name"] == "limit" for parameter in operation["parameters"])
    schemas = document["components"]["schemas"]
    assert {"Recommendation", "Reason", "Recommendations"} <= set(schemas)
    assert "/api/v1/projects/{project_id}/also" in document["paths"]
