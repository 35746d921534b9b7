"""The needs API: publish and list with facets, respond, decide, sign in one step; refusals in
the fair's error shape, storing nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from deals.models import Intent
from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.database import utcnow
from fair.extensions import db
from fair.models import Fair
from needs.models import Need, NeedResponse

Headers = Callable[[User], dict[str, str]]


def body(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "title": "非遗手工体验课进校园", "description": "面向 200 名小学生",
        "category": "intangible-heritage", "budget_min": "50000.00", "budget_max": "80000.00",
        "province": "CN-CQ", "city": "渝中区", "max_responses": 2, "publish": True,
        "deadline": (utcnow() + dt.timedelta(days=10)).isoformat(),
    }
    data.update(overrides)
    return data


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_a_verified_buyer_publishes_and_anyone_lists_with_facets(
    client: FlaskClient, fair: Fair, buyer: User, token_for: Headers
) -> None:
    created = client.post(f"/api/v1/fairs/{fair.id}/needs", json=body(),
                          headers=token_for(buyer))
    assert created.status_code == 201, created.json
    assert created.json["status"] == "open"
    assert created.json["budget_min"] == "50000.00"
    listed = client.get(f"/api/v1/fairs/{fair.id}/needs?q=非遗&province=CN-CQ")
    assert listed.status_code == 200
    assert listed.json["total"] == 1
    assert listed.json["items"][0]["title"] == "非遗手工体验课进校园"
    heritage = next(value for value in listed.json["facets"]["category"]
                    if value["code"] == "intangible-heritage")
    assert heritage["count"] == 1
    one = client.get(f"/api/v1/needs/{created.json['id']}")
    assert one.json["city"] == "渝中区"


@pytest.mark.parametrize(("overrides", "field"), [
    ({"budget_min": "90000.00"}, "budget_max"),
    ({"budget_min": 500.5}, "budget_min"),
    ({"deadline": "2020-01-01T00:00:00+08:00"}, "deadline"),
    ({"max_responses": 0}, "max_responses"),
])
def test_bad_needs_are_422_and_store_nothing(
    client: FlaskClient, fair: Fair, buyer: User, token_for: Headers,
    overrides: dict[str, object], field: str,
) -> None:
    refused = client.post(f"/api/v1/fairs/{fair.id}/needs", json=body(**overrides),
                          headers=token_for(buyer))
    assert refused.status_code == 422, refused.json
    assert field in refused.json["error"]["fields"]
    assert count(Need) == 0


def test_unverified_buyers_and_exhibitors_cannot_publish(
    client: FlaskClient, fair: Fair, make_user: Callable[..., User], token_for: Headers,
    verify: Callable[[User], User],
) -> None:
    for user in (make_user(Role.buyer, verified=False), make_user(Role.exhibitor)):
        refused = client.post(f"/api/v1/fairs/{fair.id}/needs", json=body(),
                              headers=token_for(user))
        assert refused.status_code == 403
    assert client.post(f"/api/v1/fairs/{fair.id}/needs", json=body()).status_code == 401
    assert count(Need) == 0


def test_respond_decide_and_sign_in_one_step(
    client: FlaskClient, fair: Fair, buyer: User, token_for: Headers,
    make_project: Callable[..., Project], make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    need = client.post(f"/api/v1/fairs/{fair.id}/needs", json=body(),
                       headers=token_for(buyer)).json
    _, owner = make_exhibitor(fair)
    project = make_project(fair, user=owner, title="蜀绣非遗手工课",
                           category="intangible-heritage")
    responded = client.post(f"/api/v1/needs/{need['id']}/responses",
                            json={"project_id": project.id, "price": "62000.00",
                                  "note": "含材料"}, headers=token_for(owner))
    assert responded.status_code == 201, responded.json
    response_id = responded.json["id"]
    again = client.post(f"/api/v1/needs/{need['id']}/responses",
                        json={"project_id": project.id, "price": "1.00"},
                        headers=token_for(owner))
    assert again.status_code == 409
    edited = client.patch(f"/api/v1/responses/{response_id}", json={"price": "61000.00"},
                          headers=token_for(owner))
    assert edited.json["price"] == "61000.00"
    # Visible to the buyer and the responder; not to another exhibitor or anonymously.
    _, rival = make_exhibitor(fair)
    assert client.get(f"/api/v1/responses/{response_id}",
                      headers=token_for(rival)).status_code == 404
    assert client.get(f"/api/v1/needs/{need['id']}/responses",
                      headers=token_for(rival)).json["items"] == []
    assert len(client.get(f"/api/v1/needs/{need['id']}/responses",
                          headers=token_for(buyer)).json["items"]) == 1
    shortlisted = client.post(f"/api/v1/responses/{response_id}/shortlist",
                              headers=token_for(buyer))
    assert shortlisted.json["status"] == "shortlisted"
    assert client.post(f"/api/v1/responses/{response_id}/intent",
                       headers=token_for(buyer)).status_code == 422  # no key
    headers = {**token_for(buyer), "Idempotency-Key": "respond-1"}
    signed = client.post(f"/api/v1/responses/{response_id}/intent", headers=headers)
    assert signed.status_code == 201, signed.json
    assert signed.json["amount"] == "61000.00"
    assert (signed.json["need_id"], signed.json["response_id"]) == (need["id"], response_id)
    replay = client.post(f"/api/v1/responses/{response_id}/intent", headers=headers)
    assert replay.json["id"] == signed.json["id"]
    assert count(Intent) == 1
    totals = client.get(f"/api/v1/fairs/{fair.id}/totals").json
    assert totals["amount"] == "61000.00"
    assert client.post(f"/api/v1/responses/{response_id}/intent",
                       headers=token_for(owner) | {"Idempotency-Key": "x"}).status_code == 403


def test_closed_needs_and_declined_responses_are_refused(
    client: FlaskClient, fair: Fair, buyer: User, token_for: Headers,
    make_project: Callable[..., Project], make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    need = client.post(f"/api/v1/fairs/{fair.id}/needs", json=body(),
                       headers=token_for(buyer)).json
    _, owner = make_exhibitor(fair)
    first = make_project(fair, user=owner, title="甲")
    second = make_project(fair, user=owner, title="乙")
    response = client.post(f"/api/v1/needs/{need['id']}/responses",
                           json={"project_id": first.id, "price": "100.00"},
                           headers=token_for(owner)).json
    client.post(f"/api/v1/responses/{response['id']}/decline", headers=token_for(buyer))
    refused = client.post(f"/api/v1/responses/{response['id']}/intent",
                          headers=token_for(buyer) | {"Idempotency-Key": "d-1"})
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "response_declined"
    closed = client.post(f"/api/v1/needs/{need['id']}/close", headers=token_for(buyer))
    assert closed.json["status"] == "closed"
    late = client.post(f"/api/v1/needs/{need['id']}/responses",
                       json={"project_id": second.id, "price": "100.00"},
                       headers=token_for(owner))
    assert late.status_code == 409
    assert count(NeedResponse) == 1
    assert count(Intent) == 0


def test_an_exhibitor_lists_the_needs_matching_its_projects(
    client: FlaskClient, fair: Fair, buyer: User, token_for: Headers,
    make_project: Callable[..., Project], make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    _, owner = make_exhibitor(fair)
    make_project(fair, user=owner, title="非遗手工课", category="intangible-heritage")
    need = client.post(f"/api/v1/fairs/{fair.id}/needs", json=body(),
                       headers=token_for(buyer)).json
    matching = client.get(f"/api/v1/fairs/{fair.id}/needs/matching", headers=token_for(owner))
    assert [item["need"]["id"] for item in matching.json["items"]] == [need["id"]]
    inbox = client.get("/api/v1/me/notifications", headers=token_for(owner)).json
    assert inbox["unread"] == 1
    assert inbox["items"][0]["kind"] == "need_matched"
    assert "非遗手工体验课进校园" in inbox["items"][0]["text"]


def test_organisers_export_needs_and_responses_for_chinese_excel(
    client: FlaskClient, fair: Fair, buyer: User, organiser: User, token_for: Headers,
    make_project: Callable[..., Project], make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    import io

    from openpyxl import load_workbook

    need = client.post(f"/api/v1/fairs/{fair.id}/needs", json=body(title="=非遗课"),
                       headers=token_for(buyer)).json
    client.post(f"/api/v1/fairs/{fair.id}/needs", json=body(title="无人响应的需求"),
                headers=token_for(buyer))
    _, owner = make_exhibitor(fair)
    project = make_project(fair, user=owner, title="蜀绣课")
    response = client.post(f"/api/v1/needs/{need['id']}/responses",
                           json={"project_id": project.id, "price": "61000.50"},
                           headers=token_for(owner)).json
    client.post(f"/api/v1/responses/{response['id']}/intent",
                headers=token_for(buyer) | {"Idempotency-Key": "export-1"})
    assert client.get(f"/api/v1/fairs/{fair.id}/needs/export",
                      headers=token_for(buyer)).status_code == 403
    exported = client.get(f"/api/v1/fairs/{fair.id}/needs/export?format=csv",
                          headers=token_for(organiser))
    assert exported.status_code == 200
    assert exported.data.startswith("\ufeff".encode())
    text = exported.data.decode("utf-8-sig").splitlines()
    assert text[0].startswith("需求编号,需求,采购机构")
    assert "'=非遗课" in text[1]  # never a formula
    assert "61000.50" in text[1]
    assert text[1].endswith(",是")
    assert "无人响应的需求" in text[2]
    workbook = client.get(f"/api/v1/fairs/{fair.id}/needs/export?format=xlsx",
                          headers=token_for(organiser))
    sheet = load_workbook(io.BytesIO(workbook.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1][1] == "=非遗课"
    assert rows[1][12] == 61000.5


def test_the_portrait_shows_needs_match_and_conversion_rates(
    client: FlaskClient, fair: Fair, buyer: User, organiser: User, token_for: Headers,
    make_project: Callable[..., Project], make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    _, owner = make_exhibitor(fair)
    project = make_project(fair, user=owner, title="蜀绣课", category="intangible-heritage")
    first = client.post(f"/api/v1/fairs/{fair.id}/needs", json=body(),
                        headers=token_for(buyer)).json
    client.post(f"/api/v1/fairs/{fair.id}/needs", json=body(category="tourism"),
                headers=token_for(buyer))
    responses = [client.post(f"/api/v1/needs/{first['id']}/responses",
                             json={"project_id": project.id, "price": "100.00"},
                             headers=token_for(owner)).json]
    client.post(f"/api/v1/responses/{responses[0]['id']}/intent",
                headers=token_for(buyer) | {"Idempotency-Key": "portrait"})
    assert client.get(f"/api/v1/fairs/{fair.id}/insights/needs",
                      headers=token_for(buyer)).status_code == 403
    figures = client.get(f"/api/v1/fairs/{fair.id}/insights/needs",
                         headers=token_for(organiser)).json
    by_category = {row["key"]: row for row in figures["category"]}
    assert by_category["intangible-heritage"] == {
        "key": "intangible-heritage", "needs": 1, "responses": 1, "matched_needs": 1,
        "signed_responses": 1, "match_rate": 100, "conversion_rate": 100}
    assert by_category["tourism"]["match_rate"] == 0
    assert figures["province"] == [{
        "key": "CN-CQ", "needs": 2, "responses": 1, "matched_needs": 1, "signed_responses": 1,
        "match_rate": 50, "conversion_rate": 100}]
    page = client.get("/organiser/insights", headers=token_for(organiser)).get_data(as_text=True)
    assert 'data-testid="needs-by-category"' in page
