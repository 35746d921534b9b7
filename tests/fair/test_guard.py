"""No 500 from input: ids past the database's range, huge pages, deep or large JSON, text that
cannot be stored, line breaks in `next=`, names of blanks (fair.guard and the schemas)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient
from flask_socketio.test_client import SocketIOTestClient
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from deals.models import IdempotencyKey, Intent
from exhibitors.models import Project
from fair import guard
from fair.accounts import service as account_service
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from livehalls import rooms
from livehalls.models import Hall
from tests.conftest import PASSWORD
from tests.pages import csrf_token

Headers = Callable[[User], dict[str, str]]
BEYOND = [2**31, 2**40, 2**63, 2**64 + 1, 10**30]


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(account_service, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body: dict[str, Any] = response.json
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


@pytest.mark.parametrize("number", BEYOND)
@pytest.mark.parametrize("path", [
    "/api/v1/fairs/{}", "/api/v1/projects/{}", "/api/v1/halls/{}", "/api/v1/deals/{}",
    "/api/v1/fairs/{}/totals", "/api/v1/fairs/{}/projects",
])
def test_ids_beyond_the_database_range_are_not_found(client: FlaskClient, path: str,
                                                     number: int) -> None:
    assert_error(client.get(path.format(number)), 404, "not_found")


def test_an_id_in_a_body_beyond_the_range_is_invalid(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project],
    make_user: Callable[..., User], token_for: Headers,
) -> None:
    buyer = make_user(Role.buyer)
    project = make_project(fair)
    response = client.post(f"/api/v1/projects/{project.id}/deals",
                           json={"amount": "10.00", "hall_id": 2**40},
                           headers={**token_for(buyer), "Idempotency-Key": "k-1"})
    assert "hall_id" in assert_error(response, 422, "invalid")["fields"]
    assert db.session.scalar(select(func.count()).select_from(Intent)) == 0


@pytest.mark.parametrize("page", ["10001", str(2**63), "9" * 40])
@pytest.mark.parametrize("path", ["/api/v1/fairs/{}/projects", "/api/v1/fairs/{}/deals"])
def test_a_huge_page_is_invalid(client: FlaskClient, fair: Fair, organiser: User,
                                token_for: Headers, path: str, page: str) -> None:
    response = client.get(f"{path.format(fair.id)}?page={page}", headers=token_for(organiser))
    assert "page" in assert_error(response, 422, "invalid")["fields"]


def test_a_json_body_over_64_kb_is_refused_before_it_is_parsed(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[bool] = []
    monkeypatch.setattr("flask.wrappers.Request.get_json",
                        lambda *args, **kwargs: parsed.append(True))
    body = '{"email": "' + "a" * guard.MAX_JSON_BYTES + '", "password": "x"}'
    response = client.post("/api/v1/auth/token", data=body, content_type="application/json")
    assert_error(response, 413, "too_large")
    assert parsed == []


def test_a_streamed_json_body_over_64_kb_is_refused_while_it_is_read(client: FlaskClient) -> None:
    body = io.BytesIO(b'{"email": "' + b"a" * (guard.MAX_JSON_BYTES + 10) + b'"}')
    # A stream of unknown length: no Content-Length, as with chunked transfer encoding.
    response = client.post("/api/v1/auth/token", input_stream=body,
                           content_type="application/json",
                           environ_overrides={"wsgi.input_terminated": True})
    assert_error(response, 413)


@pytest.mark.parametrize("depth", [65, 1000, 30_000])
def test_json_nested_deeper_than_64_is_refused(client: FlaskClient, depth: int) -> None:
    body = "[" * depth + "]" * depth
    response = client.post("/api/v1/auth/token", data=body, content_type="application/json")
    assert_error(response, 400, "too_deep")


def test_json_nested_64_deep_reaches_the_schema(client: FlaskClient) -> None:
    body = '{"email": ' + "[" * 63 + "]" * 63 + ', "password": "[[[[[[[[[[[[[[[[[[[[[[["}'
    assert guard.json_depth(body) == 64
    assert_error(client.post("/api/v1/auth/token", data=body, content_type="application/json"),
                 422, "invalid")


def test_a_form_body_over_1_mb_is_refused_and_uploads_are_not(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., Any], token_for: Headers,
) -> None:
    response = client.post("/sign-in", data={"email": "a" * (1024 * 1024 + 10)})
    assert response.status_code == 413
    _, user = make_exhibitor(fair)
    project = client.post(f"/api/v1/fairs/{fair.id}/projects", headers=token_for(user), json={
        "title": "项目", "category": "digital", "price": "1.00"}).json
    big_pdf = b"%PDF-1.4\n" + b"0" * (2 * 1024 * 1024) + b"\n%%EOF\n"
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(big_pdf), filename="b.pdf")})
    response = client.post(f"/api/v1/projects/{project['id']}/media", headers=token_for(user),
                           data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 201, response.json


def test_an_upload_larger_than_any_kind_is_refused_from_its_content_length(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., Any], token_for: Headers,
) -> None:
    _, user = make_exhibitor(fair)
    project = client.post(f"/api/v1/fairs/{fair.id}/projects", headers=token_for(user), json={
        "title": "项目", "category": "digital", "price": "1.00"}).json

    class Unread(io.BytesIO):
        def read(self, *args: Any) -> bytes:
            raise AssertionError("the body was read")

    response = client.post(
        f"/api/v1/projects/{project['id']}/media", headers=token_for(user),
        input_stream=Unread(), content_type="multipart/form-data; boundary=x",
        environ_overrides={"CONTENT_LENGTH": str(300 * 1024 * 1024)})
    assert_error(response, 413)


NUL = "川剧\x00变脸"
SURROGATE = "川剧\ud800变脸"


@pytest.mark.parametrize("text", [NUL, SURROGATE])
def test_text_that_cannot_be_stored_is_refused_in_json(
    client: FlaskClient, organiser: User, token_for: Headers, text: str,
) -> None:
    response = client.post("/api/v1/fairs", headers=token_for(organiser), json={
        "name": text, "starts_at": "2026-12-01T09:00:00+08:00",
        "ends_at": "2026-12-03T09:00:00+08:00"})
    assert "name" in assert_error(response, 422, "bad_text")["fields"]
    assert db.session.scalar(select(func.count()).select_from(Fair)) == 0


@pytest.mark.parametrize("text", [NUL, SURROGATE])
def test_a_lone_surrogate_or_nul_in_a_signing_never_reaches_the_fingerprint(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project],
    make_user: Callable[..., User], token_for: Headers, text: str,
) -> None:
    buyer = make_user(Role.buyer)
    project = make_project(fair)
    response = client.post(f"/api/v1/projects/{project.id}/deals",
                           json={"amount": "10.00", "note": text},
                           headers={**token_for(buyer), "Idempotency-Key": "k-1"})
    assert "note" in assert_error(response, 422, "bad_text")["fields"]
    assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_text_that_cannot_be_stored_is_refused_in_the_query_and_forms(
    client: FlaskClient, fair: Fair,
) -> None:
    assert_error(client.get(f"/api/v1/fairs/{fair.id}/projects?q=%00"), 422, "bad_text")
    response = client.post("/sign-in", data={"email": "a\x00@example.com", "password": "x"})
    assert response.status_code == 422
    assert_error(client.get("/api/v1/fairs/%00"), 422, "bad_text")


def test_a_next_with_a_line_break_lands_on_the_role_page(
    client: FlaskClient, make_user: Callable[..., User],
) -> None:
    buyer = make_user(Role.buyer)
    response = client.post("/sign-in?next=/fairs%0d%0aSet-Cookie:%20evil=1", data={
        "email": buyer.email, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/catalogue"
    assert "evil" not in response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("name", ["  ", "\t a \n"])
def test_a_name_is_trimmed_before_its_length_is_checked(
    client: FlaskClient, organiser: User, token_for: Headers, name: str,
) -> None:
    response = client.post("/api/v1/fairs", headers=token_for(organiser), json={
        "name": name, "starts_at": "2026-12-01T09:00:00+08:00",
        "ends_at": "2026-12-03T09:00:00+08:00"})
    assert "name" in assert_error(response, 422, "invalid")["fields"]
    assert client.get("/api/v1/fairs").status_code == 200


def test_a_name_is_stored_trimmed(client: FlaskClient, organiser: User,
                                  token_for: Headers) -> None:
    response = client.post("/api/v1/fairs", headers=token_for(organiser), json={
        "name": "  成渝文旅采购大会 ", "starts_at": "2026-12-01T09:00:00+08:00",
        "ends_at": "2026-12-03T09:00:00+08:00"})
    assert response.status_code == 201, response.json
    assert response.json["name"] == "成渝文旅采购大会"


def test_registration_page_trims_names(client: FlaskClient) -> None:
    response = client.post("/register", data={
        "role": "buyer", "organisation_name": "   ", "province": "CN-SC", "name": "  ",
        "email": "someone@example.com", "password": "a long enough pass",
        "csrf_token": csrf_token(client)})
    assert response.status_code == 200
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_socket_events_refuse_ids_beyond_the_range_and_bad_text(
    live_client: Callable[..., SocketIOTestClient], token_for: Headers,
    make_user: Callable[..., User], fair: Fair,
) -> None:
    hall = Hall(fair_id=fair.id, name="一号厅", stream_url="")
    db.session.add(hall)
    db.session.commit()
    buyer = make_user(Role.buyer)
    live = live_client({"token": token_for(buyer)["Authorization"].removeprefix("Bearer ")})
    for event in ("join_hall", "leave_hall", "chat"):
        ack = live.emit(event, {"hall_id": 2**40, "text": "你好"}
                        if event == "chat" else {"hall_id": 2**40},
                        namespace=rooms.NAMESPACE, callback=True)
        assert ack["ok"] is False
        assert ack["error"]["code"] == "invalid", ack
    assert live.emit("join_hall", {"hall_id": hall.id}, namespace=rooms.NAMESPACE,
                     callback=True)["ok"] is True
    ack = live.emit("chat", {"hall_id": hall.id, "text": NUL}, namespace=rooms.NAMESPACE,
                    callback=True)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "bad_text"


def test_json_depth_ignores_brackets_inside_strings() -> None:
    assert guard.json_depth('{"a": "[[[[[[", "b": ["\\"[["]}') == 2
    assert guard.json_depth("[]") == 1
    assert guard.json_depth('"x"') == 0
