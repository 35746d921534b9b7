"""No 500 from input on either database: PostgreSQL refuses U+0000 in text and ids past 2^31-1,
both refuse lone surrogates (fair.guard), so each is a 4xx in the fair's shape, nothing stored."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select

from deals.models import IdempotencyKey, Intent
from exhibitors import service as exhibitor_service
from fair import create_app
from fair import service as fair_service
from fair.accounts import service as account_service
from fair.accounts.models import Role
from fair.extensions import db, socketio
from fair.models import Fair, FairStatus
from livehalls import broadcast, presence, rooms
from livehalls.models import ChatMessage, Hall
from tests.conftest import PASSWORD, base_config

pytestmark = pytest.mark.integration

BAD_TEXTS = ["川剧\x00变脸", "川剧\ud83d变脸", "\udfff"]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request: pytest.FixtureRequest, tmp_path: Path, migrated_database: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setattr(account_service, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    sqlite_file = tmp_path / "fair.sqlite"
    shutil.copy(migrated_database, sqlite_file)
    config = base_config(tmp_path, sqlite_file)
    if request.param == "postgresql":
        config["SQLALCHEMY_DATABASE_URI"] = request.getfixturevalue("postgres_url")
    app = create_app(config)
    # Nothing listens, and nothing may write viewer figures after the database is dropped.
    app.extensions[broadcast.EXTENSION_KEY].autoflush = False
    app.extensions[presence.EXTENSION_KEY].autotick = False
    with app.app_context():
        if request.param == "postgresql":
            upgrade()
        assert db.engine.dialect.name == request.param
        yield app
        presence.current().stop()  # while the database is there: the visits of the test
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def stage(any_app: Flask) -> dict[str, Any]:
    organiser = account_service.create_organiser(email="organiser@example.com",
                                                 password=PASSWORD)
    starts = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    fair = fair_service.create_fair(organiser=organiser, name="成渝文旅采购大会",
                                    starts_at=starts, ends_at=starts + dt.timedelta(days=3))
    fair_service.update_fair(fair, organiser=organiser, changes={"status": FairStatus.open})
    exhibitor = account_service.register_user(
        email="exhibitor@example.com", password=PASSWORD, name="参展商", role=Role.exhibitor,
        organisation_name="成都市文化馆", province="CN-SC")
    stand = exhibitor_service.apply_to_fair(fair, user=exhibitor)
    exhibitor_service.approve_exhibitor(stand, organiser=organiser)
    project = exhibitor_service.create_project(fair, user=exhibitor, title="川剧变脸",
                                               category="performance", price_fen=100_000)
    exhibitor_service.publish_project(project, user=exhibitor)
    buyer = account_service.register_user(
        email="buyer@example.com", password=PASSWORD, name="采购方", role=Role.buyer,
        organisation_name="重庆市渝中区文化馆", province="CN-CQ", phone="023-6000 0000")
    hall = Hall(fair_id=fair.id, name="一号厅", stream_url="")
    db.session.add(hall)
    db.session.commit()
    client = any_app.test_client()
    tokens = {}
    for user in (organiser, exhibitor, buyer):
        response = client.post("/api/v1/auth/token",
                               json={"email": user.email, "password": PASSWORD})
        tokens[user.role.value] = {"Authorization": f"Bearer {response.json['token']}"}
    return {"client": client, "fair": fair.id, "project": project.id, "hall": hall.id,
            "tokens": tokens}


def assert_refused(response: Any, status: int) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert set(response.json["error"]) == {"code", "message", "fields"}


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize("text", BAD_TEXTS)
def test_text_that_cannot_be_stored_is_refused_everywhere(stage: dict[str, Any],
                                                          text: str) -> None:
    client, tokens = stage["client"], stage["tokens"]
    fairs = count(Fair)
    assert_refused(client.post("/api/v1/fairs", headers=tokens["organiser"], json={
        "name": text, "starts_at": "2026-12-01T09:00:00+08:00",
        "ends_at": "2026-12-03T09:00:00+08:00"}), 422)
    assert_refused(client.patch(f"/api/v1/fairs/{stage['fair']}", headers=tokens["organiser"],
                                json={"name": text}), 422)
    assert_refused(client.post(f"/api/v1/fairs/{stage['fair']}/projects",
                               headers=tokens["exhibitor"],
                               json={"title": "项目", "category": "digital", "price": "1.00",
                                     "description": text}), 422)
    assert_refused(client.post(f"/api/v1/projects/{stage['project']}/deals",
                               headers={**tokens["buyer"], "Idempotency-Key": "k-1"},
                               json={"amount": "10.00", "note": text}), 422)
    assert_refused(client.post("/api/v1/auth/register", json={
        "email": "new@example.com", "password": "a long enough pass", "name": text,
        "role": "buyer", "phone": "028-8888 0000",
        "organisation": {"name": "文化馆", "province": "CN-SC"}}), 422)
    assert_refused(client.post("/api/v1/auth/token", json={
        "email": text, "password": text}), 422)
    assert count(Fair) == fairs
    assert count(Intent) == count(IdempotencyKey) == 0
    assert client.get(f"/api/v1/fairs/{stage['fair']}").json["name"] == "成渝文旅采购大会"


def test_a_nul_in_the_query_or_path_is_refused(stage: dict[str, Any]) -> None:
    client = stage["client"]
    assert_refused(client.get(f"/api/v1/fairs/{stage['fair']}/projects?q=%E5%B7%9D%00"), 422)
    assert_refused(client.get("/media/%00abc"), 422)


@pytest.mark.parametrize("number", [2**31, 2**40, 2**64])
def test_ids_and_pages_beyond_the_range_are_refused(stage: dict[str, Any], number: int) -> None:
    client, tokens = stage["client"], stage["tokens"]
    for path in (f"/api/v1/fairs/{number}", f"/api/v1/projects/{number}",
                 f"/api/v1/halls/{number}/chat", f"/api/v1/deals/{number}"):
        assert_refused(client.get(path, headers=tokens["organiser"]), 404)
    assert_refused(client.post(f"/api/v1/projects/{stage['project']}/deals",
                               headers={**tokens["buyer"], "Idempotency-Key": "k-2"},
                               json={"amount": "10.00", "hall_id": number}), 422)
    assert_refused(client.post(f"/api/v1/halls/{stage['hall']}/showcases",
                               headers=tokens["organiser"],
                               json={"project_id": number, "starts_at": "2026-12-01T10:00:00Z",
                                     "ends_at": "2026-12-01T11:00:00Z"}), 422)
    for path in (f"/api/v1/fairs/{stage['fair']}/projects",
                 f"/api/v1/fairs/{stage['fair']}/deals"):
        assert_refused(client.get(f"{path}?page={number}", headers=tokens["organiser"]), 422)
    assert count(Intent) == 0


def test_socket_events_with_huge_ids_or_bad_text_are_refused(any_app: Flask,
                                                             stage: dict[str, Any]) -> None:
    token = stage["tokens"]["buyer"]["Authorization"].removeprefix("Bearer ")
    live = socketio.test_client(any_app, namespace=rooms.NAMESPACE, auth={"token": token})
    try:
        for payload in ({"hall_id": 2**40}, {"hall_id": 2**63}):
            ack = live.emit("join_hall", payload, namespace=rooms.NAMESPACE, callback=True)
            assert (ack["ok"], ack["error"]["code"]) == (False, "invalid")
        assert live.emit("join_hall", {"hall_id": stage["hall"]}, namespace=rooms.NAMESPACE,
                         callback=True)["ok"] is True
        for text in BAD_TEXTS:
            ack = live.emit("chat", {"hall_id": stage["hall"], "text": text},
                            namespace=rooms.NAMESPACE, callback=True)
            assert (ack["ok"], ack["error"]["code"]) == (False, "bad_text")
        assert count(ChatMessage) == 0
    finally:
        live.disconnect(namespace=rooms.NAMESPACE)
