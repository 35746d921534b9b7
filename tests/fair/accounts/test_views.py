"""Sign-in, sign-out and registration pages."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fair.accounts import service as account_service
from fair.accounts.models import Role, User
from fair.auth import SESSION_KEY
from fair.models import Fair
from tests.conftest import PASSWORD
from tests.pages import csrf_token, post_form, sign_in


def registration(**changes: str) -> dict[str, str]:
    return {"role": "exhibitor", "organisation_name": "成都市文化馆", "province": "CN-SC",
            "name": "张老师", "email": "zhang@example.com", "password": PASSWORD, **changes}


def test_sign_in_page_is_chinese_by_default_and_english_by_switch(client: FlaskClient) -> None:
    assert "登录" in client.get("/sign-in").text
    english = client.get("/sign-in?lang=en")
    assert "Sign in" in english.text
    assert "Password" in english.text


def test_registering_signs_the_exhibitor_in_and_sends_them_to_the_portal(
    client: FlaskClient, fair: Fair
) -> None:
    response = post_form(client, "/register", registration())

    assert response.status_code == 302
    assert response.headers["Location"] == "/portal"
    user = account_service.find_user("zhang@example.com")
    assert user is not None
    assert user.role is Role.exhibitor
    assert user.organisation is not None
    assert user.organisation.province == "CN-SC"
    with client.session_transaction() as session:
        assert session[SESSION_KEY] == user.id


@pytest.mark.parametrize(("changes", "message"), [
    ({"email": "not-an-email"}, "请填写有效的邮箱地址"),
    ({"password": "short"}, "密码至少 10 个字符"),
    ({"province": "CN-XX"}, "不是有效的选择"),
    ({"role": "organiser"}, "不是有效的选择"),
    ({"organisation_name": ""}, "请填写此项"),
])
def test_registration_refusals_are_shown_on_the_form(
    client: FlaskClient, changes: dict[str, str], message: str
) -> None:
    response = post_form(client, "/register", registration(**changes))

    assert response.status_code == 200
    assert message in response.text
    assert account_service.find_user(registration(**changes)["email"]) is None


def test_registering_a_taken_email_explains_in_the_pages_language(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    taken = make_user(Role.buyer)
    response = post_form(client, "/register", registration(email=taken.email))
    assert "该邮箱已注册" in response.text


def test_forms_refuse_a_post_without_the_csrf_token(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user(Role.buyer)
    refused = client.post("/sign-in", data={"email": user.email, "password": PASSWORD})
    assert refused.status_code == 400
    with client.session_transaction() as session:
        assert SESSION_KEY not in session

    assert client.post("/register", data=registration()).status_code == 400
    assert account_service.find_user("zhang@example.com") is None


def test_sign_in_with_a_wrong_password_says_so(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user(Role.buyer)
    response = post_form(client, "/sign-in", {"email": user.email, "password": "wrong-password"})
    assert response.status_code == 200
    assert "邮箱或密码不正确" in response.text


def test_sign_in_returns_to_the_page_that_asked(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user(Role.buyer)
    response = post_form(client, "/sign-in?next=/catalogue?q=川剧",
                         {"email": user.email, "password": PASSWORD})
    assert unquote(response.headers["Location"]) == "/catalogue?q=川剧"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
def test_sign_in_never_redirects_to_another_site(
    client: FlaskClient, make_user: Callable[..., User], target: str
) -> None:
    user = make_user(Role.buyer)
    response = post_form(client, f"/sign-in?next={target}",
                         {"email": user.email, "password": PASSWORD})
    assert response.headers["Location"] == "/catalogue"


def test_sign_out_needs_a_post_with_the_token(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    sign_in(client, make_user(Role.buyer))
    assert client.get("/sign-out").status_code == 405
    assert client.post("/sign-out").status_code == 400

    signed_out = client.post("/sign-out", data={"csrf_token": csrf_token(client, "/")})

    assert signed_out.status_code == 302
    with client.session_transaction() as session:
        assert SESSION_KEY not in session


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(
    app: Flask, client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user(Role.buyer)
    sign_in(client, user)
    cookie = client.get_cookie("session")
    assert cookie is not None
    copy = app.test_client()
    copy.set_cookie("session", cookie.value)
    assert copy.get("/api/v1/me").json["id"] == user.id

    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/")})

    refused = copy.get("/api/v1/me")
    assert refused.status_code == 401
    assert refused.json["error"]["code"] == "unauthorized"
    assert copy.get("/my/intents").status_code == 302  # sent to sign in


def test_signing_out_on_one_browser_leaves_the_others_signed_in(
    app: Flask, client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user(Role.buyer)
    other = app.test_client()
    sign_in(other, user)
    sign_in(client, user)
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/")})
    assert other.get("/api/v1/me").json["id"] == user.id
