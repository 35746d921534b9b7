"""Fair API: organisers create fairs and move them through draft, open and closed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from fair.accounts.models import Role, User

NEW_FAIR = {
    "name": "成都文化旅游公共服务采购大会",
    "starts_at": "2026-12-01T09:00:00+08:00",
    "ends_at": "2026-12-03T18:00:00+08:00",
}


@pytest.fixture
def organiser_headers(organiser: User, token_for: Callable[[User], dict[str, str]]
                      ) -> dict[str, str]:
    return token_for(organiser)


def test_organiser_creates_a_draft_fair_and_opens_and_closes_it(
    client: FlaskClient, organiser_headers: dict[str, str]
) -> None:
    created = client.post("/api/v1/fairs", json=NEW_FAIR, headers=organiser_headers)
    assert created.status_code == 201
    assert created.json["status"] == "draft"
    fair_id = created.json["id"]
    for status in ("open", "closed", "open"):
        moved = client.patch(f"/api/v1/fairs/{fair_id}", json={"status": status},
                             headers=organiser_headers)
        assert moved.status_code == 200
        assert moved.json["status"] == status
    shown = client.get(f"/api/v1/fairs/{fair_id}").json
    assert shown["name"] == NEW_FAIR["name"]
    # Beijing time in, the same instant out, with its offset: never a naive time.
    assert (shown["starts_at"], shown["ends_at"]) == (
        "2026-12-01T01:00:00+00:00", "2026-12-03T10:00:00+00:00")
    assert [fair["id"] for fair in client.get("/api/v1/fairs").json] == [fair_id]


def test_a_fair_never_goes_back_to_draft(
    client: FlaskClient, organiser_headers: dict[str, str]
) -> None:
    fair_id = client.post("/api/v1/fairs", json=NEW_FAIR, headers=organiser_headers).json["id"]
    client.patch(f"/api/v1/fairs/{fair_id}", json={"status": "open"}, headers=organiser_headers)
    refused = client.patch(f"/api/v1/fairs/{fair_id}", json={"status": "draft"},
                           headers=organiser_headers)
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "bad_transition"
    assert client.get(f"/api/v1/fairs/{fair_id}").json["status"] == "open"


@pytest.mark.parametrize(
    "changes",
    [
        {"ends_at": "2026-11-30T09:00:00+08:00"},
        {"starts_at": "2026-12-01T09:00:00"},
        {"name": "x"},
        {"status": "running"},
    ],
)
def test_bad_fairs_are_refused(
    client: FlaskClient, organiser_headers: dict[str, str], changes: dict[str, Any]
) -> None:
    response = client.post("/api/v1/fairs", json={**NEW_FAIR, **changes},
                           headers=organiser_headers)
    assert response.status_code == 422
    assert client.get("/api/v1/fairs").json == []


@pytest.mark.parametrize("role", [Role.buyer, Role.exhibitor])
def test_only_organisers_create_fairs(
    client: FlaskClient, make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]], role: Role,
) -> None:
    response = client.post("/api/v1/fairs", json=NEW_FAIR, headers=token_for(make_user(role)))
    assert response.status_code == 403
    assert client.post("/api/v1/fairs", json=NEW_FAIR).status_code == 401


def test_unknown_fair_is_404_in_the_error_shape(client: FlaskClient) -> None:
    response = client.get("/api/v1/fairs/999")
    assert response.status_code == 404
    assert response.json == {"error": {"code": "not_found", "message": "没有这届大会。",
                                       "fields": {}}}


def test_openapi_document_describes_every_api_route(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    described = {path for path in document["paths"]}
    routes = {
        # <int:id> and <token> alike become {id} and {token}.
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for rule in client.application.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1/openapi.json"
    }
    assert routes <= described
    register = document["paths"]["/api/v1/auth/register"]["post"]
    assert "requestBody" in register
