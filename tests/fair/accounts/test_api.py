"""Accounts API: registration refusals, tokens, the signed-in user."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from fair.accounts.models import ApiToken, Role, User
from fair.extensions import db
from tests.pages import cookie_session

VALID = {
    "email": "buyer@tourism.example.cn",
    "password": "a long enough password",
    "name": "王采购",
    "role": "buyer",
    "phone": "028-8888 0000",
    "organisation": {"name": "重庆市文化旅游委员会", "province": "CN-CQ"},
}


def register(client: FlaskClient, **changes: Any) -> Any:
    return client.post("/api/v1/auth/register", json={**VALID, **changes})


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def test_register_makes_a_buyer_with_organisation(client: FlaskClient) -> None:
    response = register(client)
    assert response.status_code == 201
    assert response.json["role"] == "buyer"
    assert response.json["organisation"] == {
        "id": response.json["organisation"]["id"], "name": "重庆市文化旅游委员会",
        "province": "CN-CQ", "verified": False, "verified_at": None,
    }
    assert "password" not in response.json
    user = db.session.get(User, response.json["id"])
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"organisation": {"name": "某文化馆", "province": "CN-XX"}}, "organisation"),
        ({"organisation": {"name": "某文化馆", "province": "Sichuan"}}, "organisation"),
        ({"role": "organiser"}, "role"),
        ({"role": "admin"}, "role"),
        ({"name": ""}, "name"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_register_refuses_bad_input_and_stores_nothing(
    client: FlaskClient, changes: dict[str, Any], field: str
) -> None:
    response = register(client, **changes)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid"
    assert field in response.json["error"]["fields"]
    assert user_count() == 0


def test_register_refuses_a_taken_email_whatever_its_case(client: FlaskClient) -> None:
    assert register(client).status_code == 201
    again = register(client, email=VALID["email"].upper())
    assert again.status_code == 409
    assert again.json["error"]["code"] == "email_taken"
    assert user_count() == 1


def test_token_authenticates_and_is_stored_hashed(client: FlaskClient) -> None:
    register(client)
    response = client.post("/api/v1/auth/token",
                           json={"email": VALID["email"], "password": VALID["password"]})
    assert response.status_code == 200
    token = response.json["token"]
    stored = db.session.scalars(select(ApiToken.token_hash)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json["email"] == VALID["email"]


@pytest.mark.parametrize(
    "credentials",
    [
        {"email": VALID["email"], "password": "wrong password!"},
        {"email": "nobody@example.com", "password": VALID["password"]},
    ],
)
def test_wrong_credentials_get_401(client: FlaskClient, credentials: dict[str, str]) -> None:
    register(client)
    response = client.post("/api/v1/auth/token", json=credentials)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "bad_credentials"


def test_me_needs_a_user(client: FlaskClient) -> None:
    assert client.get("/api/v1/me").status_code == 401
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401
    assert bad.json["error"]["code"] == "bad_token"


def test_revoked_token_stops_working(
    client: FlaskClient, make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    headers = token_for(make_user(Role.buyer))
    assert client.post("/api/v1/auth/token/revoke", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_cookie_session_needs_csrf_on_unsafe_api_calls(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:

    user = make_user(Role.exhibitor)
    cookie_session(client, user)
    assert client.get("/api/v1/me").json["id"] == user.id
    refused = client.post("/api/v1/auth/token/revoke")
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "csrf"


def test_a_buyer_gives_a_phone_to_register(client: FlaskClient) -> None:
    without = client.post("/api/v1/auth/register", json={**VALID, "phone": ""})
    assert without.status_code == 422
    assert without.json["error"]["fields"] == {"phone": ["采购方请填写联系电话。"]}
    wrong = client.post("/api/v1/auth/register", json={**VALID, "phone": "call me"})
    assert wrong.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert client.post("/api/v1/auth/register", json=VALID).status_code == 201
