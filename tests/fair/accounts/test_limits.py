"""Sign-in abuse: wrong passwords are counted per account and per client address, on the page
and the token endpoint alike; registration is limited per address; passwords follow ASVS 6.2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from fair import create_app, demo
from fair.accounts import service as account_service
from fair.accounts.models import Role, User
from fair.errors import InvalidInput
from fair.extensions import db
from tests.conftest import PASSWORD, base_config
from tests.pages import csrf_token


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(account_service, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def limited_app(tmp_path: Path, migrated_database: Path) -> Iterator[Flask]:
    """Small limits, so that a test reaches them in a few requests."""
    import shutil

    database_file = tmp_path / "fair.sqlite"
    shutil.copy(migrated_database, database_file)
    app = create_app({**base_config(tmp_path, database_file),
                      "SIGN_IN_ACCOUNT_LIMIT": "5 per 15 minutes",
                      "SIGN_IN_ADDRESS_LIMIT": "8 per 15 minutes",
                      "REGISTER_ADDRESS_LIMIT": "3 per hour"})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def user(limited_app: Flask) -> User:
    return account_service.register_user(
        email="buyer@example.com", password=PASSWORD, name="采购方", role=Role.buyer,
        organisation_name="重庆市文化馆", province="CN-CQ", phone="023-6000 0000")


def token(client: FlaskClient, email: str, password: str, address: str = "198.51.100.7"
          ) -> Any:
    return client.post("/api/v1/auth/token", json={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def assert_limited(response: Any) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)[:300]
    assert int(response.headers["Retry-After"]) > 0
    assert response.json["error"]["code"] == "rate_limited"
    assert set(response.json["error"]) == {"code", "message", "fields"}


def test_wrong_passwords_lock_the_account_then_even_the_right_one_waits(
    limited_app: Flask, user: User,
) -> None:
    client = limited_app.test_client()
    for _ in range(5):
        assert token(client, user.email, "wrong password!").status_code == 401
    assert_limited(token(client, user.email, PASSWORD))
    # From another address too: the limit is the account's.
    assert_limited(token(client, "  BUYER@example.com ", PASSWORD, address="203.0.113.9"))


def test_the_page_and_the_token_endpoint_share_the_account_limit(
    limited_app: Flask, user: User,
) -> None:
    client = limited_app.test_client()
    for _ in range(3):
        assert token(client, user.email, "wrong password!").status_code == 401
    for _ in range(2):
        page = client.post("/sign-in", data={"email": user.email, "password": "wrong password!",
                                              "csrf_token": csrf_token(client)},
                           environ_base={"REMOTE_ADDR": "198.51.100.7"})
        assert page.status_code == 200
    refused = client.post("/sign-in", data={"email": user.email, "password": PASSWORD,
                                             "csrf_token": csrf_token(client)})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "尝试次数过多" in refused.get_data(as_text=True)


def test_right_passwords_do_not_count(limited_app: Flask, user: User) -> None:
    client = limited_app.test_client()
    for _ in range(12):
        assert token(client, user.email, PASSWORD).status_code == 200


def test_one_address_trying_many_accounts_is_limited(limited_app: Flask, user: User) -> None:
    client = limited_app.test_client()
    for number in range(8):
        assert token(client, f"nobody{number}@example.com", "wrong password!").status_code == 401
    assert_limited(token(client, user.email, PASSWORD))
    assert token(client, user.email, PASSWORD, address="203.0.113.9").status_code == 200


def test_registration_is_limited_per_address(limited_app: Flask, user: User) -> None:
    client = limited_app.test_client()

    def register(email: str) -> Any:
        return client.post("/api/v1/auth/register", json={
            "email": email, "password": "a long enough pass", "name": "采购方",
            "role": "buyer", "phone": "028-8888 0000",
            "organisation": {"name": "文化馆", "province": "CN-SC"}},
            environ_base={"REMOTE_ADDR": "198.51.100.7"})

    assert register(user.email).json["error"]["code"] == "email_taken"
    assert register("first@example.com").status_code == 201
    assert register("second@example.com").status_code == 201
    assert_limited(register("third@example.com"))
    assert db.session.scalar(select(func.count()).select_from(User)) == 3


@pytest.mark.parametrize(("password", "code"), [
    ("short", "password_too_short"),
    ("buyer@example.com", "password_is_email"),
    ("BUYER@EXAMPLE.COM", "password_is_email"),
    ("buyer@exam", None),
    ("1234567890", "common_password"),
    ("qwertyuiop", "common_password"),
    ("Password123", "common_password"),
    ("iloveyou123", "common_password"),
    ("川剧变脸专场演出采购", None),
])
def test_passwords_follow_asvs(app: Flask, password: str, code: str | None) -> None:
    if code is None:
        account_service.check_password(password, email="buyer@example.com")
        return
    with pytest.raises(InvalidInput) as refused:
        account_service.register_user(
            email="buyer@example.com", password=password, name="采购方", role=Role.buyer,
            organisation_name="文化馆", province="CN-SC", phone="028-8888 0000")
    assert refused.value.code == code
    assert "password" in refused.value.fields


def test_the_common_list_comes_from_a_package() -> None:
    common = account_service.common_passwords()
    assert len(common) >= 10_000
    assert {"password", "123456", "qwerty"} <= common


@pytest.mark.parametrize("password", [PASSWORD, demo.ORGANISER_PASSWORD,
                                      demo.EXHIBITOR_PASSWORD, demo.BUYER_PASSWORD])
def test_the_demo_and_test_passwords_pass_the_rule(password: str) -> None:
    for email in (demo.ORGANISER_EMAIL, demo.EXHIBITOR_EMAIL, demo.BUYER_EMAIL):
        account_service.check_password(password, email=email)


def test_the_registration_page_explains_a_common_password(client: FlaskClient) -> None:
    page = client.post("/register", data={
        "role": "buyer", "organisation_name": "文化馆", "province": "CN-SC", "name": "采购方",
        "email": "someone@example.com", "password": "1234567890",
        "csrf_token": csrf_token(client)})
    assert page.status_code == 200
    assert "这个密码太常见" in page.get_data(as_text=True)


