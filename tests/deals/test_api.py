"""Intents and totals over HTTP: amounts, idempotency, roles, lists and the totals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from deals import totals as deal_totals
from deals.models import FairTotals, IdempotencyKey, Intent
from deals.schemas import DealSchema
from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from livehalls.models import Hall
from livehalls.schemas import TotalsSchema
from tests.pages import cookie_session

Headers = Callable[[User], dict[str, str]]


def sign_path(project: Project | int) -> str:
    return f"/api/v1/projects/{project if isinstance(project, int) else project.id}/deals"


def keyed(headers: dict[str, str], key: str = "key-1") -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def state(fair: Fair) -> tuple[int, int, int, Any]:
    """Everything an intent request could change."""
    intents = db.session.scalar(select(func.count()).select_from(Intent)) or 0
    keys = db.session.scalar(select(func.count()).select_from(IdempotencyKey)) or 0
    rows = db.session.scalar(select(func.count()).select_from(FairTotals)) or 0
    return intents, keys, rows, deal_totals.read_totals(fair.id)


def test_a_buyer_signs_and_gets_the_deal(
    client: FlaskClient, project: Project, buyer: User, token_for: Headers, fair: Fair,
    make_hall: Callable[..., Hall],
) -> None:
    hall = make_hall(fair)
    response = client.post(sign_path(project), headers=keyed(token_for(buyer)),
                           json={"amount": "120000.00", "hall_id": hall.id, "note": "采购意向"})
    assert response.status_code == 201, response.json
    deal = response.json
    assert DealSchema().validate(deal) == {}
    assert deal["amount"] == "120000.00"
    assert (deal["project_id"], deal["hall_id"], deal["status"]) == (project.id, hall.id, "active")
    assert deal["secured"] is False
    assert deal["note"] == "采购意向"
    assert deal["created_at"].endswith("+00:00")
    assert client.get(f"/api/v1/fairs/{fair.id}/totals").json["amount"] == "120000.00"


@pytest.mark.parametrize("amount", [
    "0", "0.00", "-1", "-0.01", "1.001", "12.345", "abc", "", "1e5", "1E5", "NaN", "nan",
    "Infinity", "-Infinity", "inf", "１２３", "1_000", " 12", "12 ", "+12", ".5", "5.", "0x10",
    "1,000", "100000000.01", "999999999999", "1" * 40, 12.5, 100, 0, True, None, [], {},
])
def test_amounts_outside_the_rules_are_refused_and_change_nothing(
    client: FlaskClient, project: Project, buyer: User, token_for: Headers, fair: Fair,
    amount: Any,
) -> None:
    before = state(fair)
    response = client.post(sign_path(project), headers=keyed(token_for(buyer)),
                           json={"amount": amount})
    assert response.status_code == 422, response.json
    assert "amount" in response.json["error"]["fields"]
    assert state(fair) == before


@pytest.mark.parametrize(("amount", "fen"), [
    ("0.01", 1), ("1", 100), ("1.5", 150), ("38568300.00", 3_856_830_000),
    ("100000000.00", 10_000_000_000),
])
def test_plain_amounts_are_taken_to_the_fen(
    client: FlaskClient, project: Project, buyer: User, token_for: Headers, amount: str,
    fen: int,
) -> None:
    response = client.post(sign_path(project), headers=keyed(token_for(buyer)),
                           json={"amount": amount})
    assert response.status_code == 201, response.json
    assert db.session.get(Intent, response.json["id"]).amount_fen == fen


@pytest.mark.parametrize("body", [
    {"amount": "1.00", "hall_id": "1"}, {"amount": "1.00", "hall_id": 1.0},
    {"amount": "1.00", "note": "注" * 501}, {"amount": "1.00", "buyer_id": 1}, {"note": "no"},
])
def test_malformed_bodies_are_refused(
    client: FlaskClient, project: Project, buyer: User, token_for: Headers, fair: Fair,
    body: dict[str, Any],
) -> None:
    before = state(fair)
    response = client.post(sign_path(project), headers=keyed(token_for(buyer)), json=body)
    assert response.status_code == 422
    assert state(fair) == before


def test_a_hall_of_another_fair_is_refused(
    client: FlaskClient, project: Project, buyer: User, token_for: Headers,
    make_fair: Callable[..., Fair], make_hall: Callable[..., Hall], fair: Fair,
) -> None:
    elsewhere = make_hall(make_fair(name="另一届采购大会"))
    before = state(fair)
    response = client.post(sign_path(project), headers=keyed(token_for(buyer)),
                           json={"amount": "1.00", "hall_id": elsewhere.id})
    assert response.status_code == 422
    assert "hall_id" in response.json["error"]["fields"]
    assert state(fair) == before


@pytest.mark.parametrize("key", [None, "", "k" * 101, "有中文", "with space"])
def test_a_missing_or_malformed_idempotency_key_is_refused(
    client: FlaskClient, project: Project, buyer: User, token_for: Headers, fair: Fair,
    key: str | None,
) -> None:
    headers = token_for(buyer) if key is None else {**token_for(buyer), "Idempotency-Key": key}
    before = state(fair)
    response = client.post(sign_path(project), headers=headers, json={"amount": "1.00"})
    assert response.status_code == 422
    assert response.json["error"]["code"] == "idempotency_key_invalid"
    assert "Idempotency-Key" in response.json["error"]["fields"]
    assert state(fair) == before


def test_a_retry_with_the_same_key_answers_the_same_deal_and_changes_nothing(
    client: FlaskClient, project: Project, buyer: User, token_for: Headers, fair: Fair
) -> None:
    headers = keyed(token_for(buyer), "6c1f0a4e-2b0b-4b53-9a43-0d8b1e6f7a10")
    body = {"amount": "88000.00", "note": "双击"}
    first = client.post(sign_path(project), headers=headers, json=body)
    before = state(fair)
    again = client.post(sign_path(project), headers=headers, json=body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json
    assert state(fair) == before


def test_the_same_key_with_another_body_is_refused(
    client: FlaskClient, project: Project, buyer: User, token_for: Headers, fair: Fair
) -> None:
    headers = keyed(token_for(buyer))
    client.post(sign_path(project), headers=headers, json={"amount": "88000.00"})
    before = state(fair)
    response = client.post(sign_path(project), headers=headers, json={"amount": "88000.01"})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "idempotency_key_reused"
    assert state(fair) == before


@pytest.mark.parametrize(("role", "status"), [
    (None, 401), (Role.exhibitor, 403), (Role.organiser, 403),
])
def test_only_buyers_sign(
    client: FlaskClient, project: Project, make_user: Callable[..., User], token_for: Headers,
    fair: Fair, role: Role | None, status: int,
) -> None:
    headers = {} if role is None else token_for(make_user(role))
    before = state(fair)
    response = client.post(sign_path(project), headers=keyed(headers), json={"amount": "1.00"})
    assert response.status_code == status
    assert state(fair) == before


def test_unpublished_and_unknown_projects_are_not_found(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project], buyer: User,
    token_for: Headers,
) -> None:
    draft = make_project(fair, publish=False)
    for project in (draft.id, 999_999):
        response = client.post(sign_path(project), headers=keyed(token_for(buyer)),
                               json={"amount": "1.00"})
        assert response.status_code == 404


def test_a_closed_fair_refuses_intents(
    client: FlaskClient, project: Project, buyer: User, organiser: User, token_for: Headers,
    fair: Fair,
) -> None:
    client.patch(f"/api/v1/fairs/{fair.id}", json={"status": "closed"},
                 headers=token_for(organiser))
    response = client.post(sign_path(project), headers=keyed(token_for(buyer)),
                           json={"amount": "1.00"})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "fair_not_open"


def _sign_in(client: FlaskClient, user: User) -> str:
    """Sign in through the session cookie; return the page's CSRF token."""
    cookie_session(client, user)
    page = client.get("/my/intents").text
    marker = 'name="csrf-token" content="'
    start = page.index(marker) + len(marker)
    return page[start:page.index('"', start)]


def test_a_browser_signs_with_its_cookie_and_the_csrf_token(
    client: FlaskClient, project: Project, buyer: User, fair: Fair
) -> None:
    token = _sign_in(client, buyer)
    without = client.post(sign_path(project), headers={"Idempotency-Key": "k"},
                          json={"amount": "1.00"})
    assert without.status_code == 403
    assert without.json["error"]["code"] == "csrf"
    with_token = client.post(sign_path(project), json={"amount": "1.00"},
                             headers={"Idempotency-Key": "k", "X-CSRFToken": token})
    assert with_token.status_code == 201


def test_withdrawing_over_the_api(
    client: FlaskClient, project: Project, buyer: User, make_buyer: Callable[..., User],
    organiser: User, token_for: Headers, fair: Fair,
) -> None:
    deal = client.post(sign_path(project), headers=keyed(token_for(buyer)),
                       json={"amount": "5.00"}).json
    path = f"/api/v1/deals/{deal['id']}/withdraw"
    assert client.post(path).status_code == 401
    assert client.post(path, headers=token_for(make_buyer())).status_code == 404
    refused = client.post(path, headers=token_for(organiser))
    assert (refused.status_code, refused.json["error"]["code"]) == (403, "not_yours")
    withdrawn = client.post(path, headers=token_for(buyer))
    assert withdrawn.status_code == 200
    assert withdrawn.json["status"] == "withdrawn"
    assert client.post(path, headers=token_for(buyer)).json == withdrawn.json
    totals = client.get(f"/api/v1/fairs/{fair.id}/totals").json
    assert (totals["amount"], totals["deal_count"], totals["seq"]) == ("0.00", 0, 2)


def test_who_may_read_a_deal(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], buyer: User, make_buyer: Callable[..., User],
    organiser: User, token_for: Headers,
) -> None:
    _, owner = make_exhibitor(fair)
    _, stranger = make_exhibitor(fair)
    project = make_project(fair, user=owner)
    deal = client.post(sign_path(project), headers=keyed(token_for(buyer)),
                       json={"amount": "5.00"}).json
    path = f"/api/v1/deals/{deal['id']}"
    for user in (buyer, owner, organiser):
        assert client.get(path, headers=token_for(user)).json == deal
    for user in (make_buyer(), stranger):
        assert client.get(path, headers=token_for(user)).status_code == 404
    assert client.get(path).status_code == 401


def test_the_list_of_deals_per_role(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], make_buyer: Callable[..., User], organiser: User,
    token_for: Headers,
) -> None:
    _, owner = make_exhibitor(fair)
    mine, theirs = make_project(fair, user=owner), make_project(fair)
    alice, bob = make_buyer(), make_buyer()
    ids = [
        client.post(sign_path(project), headers=keyed(token_for(buyer), key),
                    json={"amount": "1.00"}).json["id"]
        for project, buyer, key in ((mine, alice, "1"), (theirs, alice, "2"), (mine, bob, "3"))
    ]
    path = f"/api/v1/fairs/{fair.id}/deals"

    def listed(user: User, query: str = "") -> tuple[int, list[int]]:
        body = client.get(path + query, headers=token_for(user)).json
        return body["total"], [deal["id"] for deal in body["items"]]

    assert listed(organiser) == (3, ids[::-1])
    assert listed(owner) == (2, [ids[2], ids[0]])
    assert listed(alice) == (2, [ids[1], ids[0]])
    assert listed(organiser, "?page=2&per_page=2") == (3, [ids[0]])
    assert client.get(path).status_code == 401
    assert client.get(path + "?per_page=501", headers=token_for(organiser)).status_code == 422
    assert client.get(path + "?format=pdf", headers=token_for(organiser)).status_code == 422
    assert client.get("/api/v1/fairs/999/deals", headers=token_for(organiser)).status_code == 404


def test_anyone_reads_the_totals(
    client: FlaskClient, project: Project, buyer: User, token_for: Headers, fair: Fair
) -> None:
    client.post(sign_path(project), headers=keyed(token_for(buyer)), json={"amount": "0.10"})
    totals = client.get(f"/api/v1/fairs/{fair.id}/totals").json
    assert TotalsSchema().validate(totals) == {}
    assert totals == deal_totals.read_totals(fair.id)
    assert (totals["seq"], totals["amount"], totals["project_count"]) == (1, "0.10", 1)
    assert client.get("/api/v1/fairs/999/totals").status_code == 404


def test_the_openapi_document_describes_the_deal_endpoints(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    sign = paths["/api/v1/projects/{project_id}/deals"]["post"]
    assert any(parameter["name"] == "Idempotency-Key" for parameter in sign["parameters"])
    assert "/api/v1/fairs/{fair_id}/totals" in paths
    assert "/api/v1/deals/{intent_id}/withdraw" in paths
