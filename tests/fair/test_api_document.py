"""What the OpenAPI document says matches what the API does (issue 15): the fair's error shape,
the bearer scheme, a required Idempotency-Key, exact amount patterns, the export's types, and
the refusals schemathesis looks for (PATCH without a body, /media 404s, TRACE)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from fair.accounts.models import Role, User
from fair.models import Fair

Headers = Callable[[User], dict[str, str]]


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/api/v1/openapi.json").json
    return document


def test_errors_are_documented_in_the_fairs_shape(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["Error"]["properties"] == {"error": {"$ref": "#/components/schemas/ErrorDetail"}}
    assert set(schemas["ErrorDetail"]["required"]) == {"code", "message", "fields"}
    default = spec["components"]["responses"]["DEFAULT_ERROR"]
    assert default["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}


def test_bearer_tokens_are_a_security_scheme(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "a token from POST /api/v1/auth/token"}
    assert {"bearer": []} in spec["security"]


@pytest.mark.parametrize("path", ["/api/v1/projects/{project_id}/deals",
                                  "/api/v1/deals/{intent_id}/deposit",
                                  "/api/v1/fairs/{fair_id}/booth-fee"])
def test_the_idempotency_key_is_required(spec: dict[str, Any], path: str) -> None:
    operation = spec["paths"][path]["post"]
    key = next(parameter for parameter in operation["parameters"]
               if parameter["name"] == "Idempotency-Key")
    assert key["required"] is True
    assert key["in"] == "header"
    assert re.fullmatch(key["schema"]["pattern"], "0b8f6c9e-uuid")
    assert not re.fullmatch(key["schema"]["pattern"], "with space")


def test_the_amount_pattern_admits_no_zero(spec: dict[str, Any]) -> None:
    amount = spec["components"]["schemas"]["IntentInput"]["properties"]["amount"]
    pattern = re.compile(amount["pattern"])
    assert not pattern.fullmatch("0.00")
    assert not pattern.fullmatch("100000000.01")
    assert pattern.fullmatch("0.01")
    booth_fee = spec["components"]["schemas"]["FairUpdate"]["properties"]["booth_fee"]
    assert re.fullmatch(booth_fee["pattern"], "0.00")
    assert not re.fullmatch(booth_fee["pattern"], "1000000.00")


def test_the_exports_content_types_are_declared(spec: dict[str, Any]) -> None:
    content = spec["paths"]["/api/v1/fairs/{fair_id}/deals"]["get"]["responses"]["200"]["content"]
    assert set(content) == {
        "application/json", "text/csv; charset=utf-8",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@pytest.mark.parametrize("body", [None, b"", b"name=x"])
def test_a_patch_without_a_json_body_is_refused(
    client: FlaskClient, fair: Fair, organiser: User, token_for: Headers, body: bytes | None,
) -> None:
    kwargs: dict[str, Any] = {} if body is None else {
        "data": body, "content_type": "application/x-www-form-urlencoded"}
    response = client.patch(f"/api/v1/fairs/{fair.id}", headers=token_for(organiser), **kwargs)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "body_required"
    assert client.patch(f"/api/v1/fairs/{fair.id}", headers=token_for(organiser),
                        json={"name": "新的名字"}).status_code == 200


def test_media_refusals_are_json(client: FlaskClient) -> None:
    for path in ("/media/" + "a" * 64, "/media/" + "a" * 64 + "/thumb", "/media/nothing"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/v1/fairs", "/api/v1/fairs/1", "/api/v1/auth/token"])
def test_trace_is_refused_with_the_allowed_methods(client: FlaskClient, path: str) -> None:
    response = client.open(path, method="TRACE")
    assert response.status_code == 405
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert "TRACE" not in allowed
    assert allowed & {"GET", "POST"}
    assert response.json["error"]["code"] == "method_not_allowed"


def test_a_missing_idempotency_key_keeps_its_own_refusal(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Any],
    make_user: Callable[..., User], token_for: Headers,
) -> None:
    project = make_project(fair)
    response = client.post(f"/api/v1/projects/{project.id}/deals", json={"amount": "1.00"},
                           headers=token_for(make_user(Role.buyer)))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "idempotency_key_invalid"
