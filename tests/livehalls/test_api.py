"""The halls API: halls, showcases, on air, figures and chat moderation over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.models import Fair
from livehalls import presence, service
from livehalls.models import Hall, Showcase

Headers = Callable[[User], dict[str, str]]

SLOT = {"starts_at": "2026-12-01T10:00:00+08:00", "ends_at": "2026-12-01T11:00:00+08:00"}


def test_organiser_opens_halls_and_anyone_lists_them(
    client: FlaskClient, fair: Fair, organiser: User, token_for: Headers
) -> None:
    response = client.post(f"/api/v1/fairs/{fair.id}/halls", headers=token_for(organiser),
                           json={"name": "一号直播厅",
                                 "stream_url": "https://live.example/one.m3u8"})
    assert response.status_code == 201, response.json
    assert response.json == {
        "id": response.json["id"], "fair_id": fair.id, "name": "一号直播厅",
        "stream_url": "https://live.example/one.m3u8", "on_air": None,
        "position": 0, "auto_on_air": True, "grace_minutes": 10,
        "viewers": 0, "visits": 0, "peak_viewers": 0,
        "fair": {"viewers": 0, "visits": 0, "peak_viewers": 0},
    }
    listed = client.get(f"/api/v1/fairs/{fair.id}/halls")
    assert [hall["name"] for hall in listed.json] == ["一号直播厅"]


@pytest.mark.parametrize(("role", "status"), [(None, 401), (Role.buyer, 403),
                                              (Role.exhibitor, 403)])
def test_others_cannot_open_halls(client: FlaskClient, fair: Fair, token_for: Headers,
                                  make_user: Callable[..., User], role: Role | None,
                                  status: int) -> None:
    headers = {} if role is None else token_for(make_user(role))
    response = client.post(f"/api/v1/fairs/{fair.id}/halls", headers=headers,
                           json={"name": "大厅"})
    assert response.status_code == status
    assert response.json["error"]["code"] in {"unauthorized", "wrong_role"}


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "厅", "stream_url": "ftp://x"},
                                  {"name": "厅", "colour": "red"}])
def test_a_malformed_hall_is_refused(client: FlaskClient, fair: Fair, organiser: User,
                                     token_for: Headers, body: dict[str, str]) -> None:
    response = client.post(f"/api/v1/fairs/{fair.id}/halls", headers=token_for(organiser),
                           json=body)
    assert response.status_code == 422
    assert response.json["error"]["fields"]


def test_scheduling_and_listing_showcases(client: FlaskClient, hall: Hall, project: Project,
                                          organiser: User, token_for: Headers) -> None:
    response = client.post(f"/api/v1/halls/{hall.id}/showcases", headers=token_for(organiser),
                           json={"project_id": project.id, **SLOT})
    assert response.status_code == 201, response.json
    assert response.json["starts_at"] == "2026-12-01T02:00:00+00:00"
    assert response.json["project"]["title"] == project.title
    assert response.json["project"]["price"] == "120000.00"
    clash = client.post(f"/api/v1/halls/{hall.id}/showcases", headers=token_for(organiser),
                        json={"project_id": project.id, "starts_at": "2026-12-01T02:30:00Z",
                              "ends_at": "2026-12-01T03:30:00Z"})
    assert clash.status_code == 409
    assert clash.json["error"]["code"] == "slot_taken"
    listed = client.get(f"/api/v1/halls/{hall.id}/showcases")
    assert [showcase["id"] for showcase in listed.json] == [response.json["id"]]


@pytest.mark.parametrize("body", [
    {"starts_at": "2026-12-01T10:00:00+08:00", "ends_at": "2026-12-01T09:00:00+08:00"},
    {"starts_at": "2026-12-01T10:00:00", "ends_at": "2026-12-01T11:00:00"},
    {"starts_at": "tomorrow", "ends_at": "2026-12-01T11:00:00+08:00"},
])
def test_a_malformed_slot_is_refused(client: FlaskClient, hall: Hall, project: Project,
                                     organiser: User, token_for: Headers,
                                     body: dict[str, str]) -> None:
    response = client.post(f"/api/v1/halls/{hall.id}/showcases", headers=token_for(organiser),
                           json={"project_id": project.id, **body})
    assert response.status_code == 422


def test_on_air_shows_in_the_hall(client: FlaskClient, hall: Hall, organiser: User,
                                  token_for: Headers, make_showcase: Callable[..., Showcase]
                                  ) -> None:
    showcase = make_showcase(hall)
    response = client.post(f"/api/v1/halls/{hall.id}/on-air", headers=token_for(organiser),
                           json={"showcase_id": showcase.id})
    assert response.status_code == 200, response.json
    hall_json = client.get(f"/api/v1/halls/{hall.id}").json
    assert hall_json["on_air"]["id"] == showcase.id
    assert hall_json["on_air"]["project"]["id"] == showcase.project_id
    assert set(hall_json["on_air"]) == {"id", "hall_id", "project", "starts_at", "ends_at",
                                        "live_url", "replay_url", "replay_duration_ms"}
    off = client.post(f"/api/v1/halls/{hall.id}/on-air", headers=token_for(organiser),
                      json={"showcase_id": None})
    assert off.json["on_air"] is None
    missing = client.post(f"/api/v1/halls/{hall.id}/on-air", headers=token_for(organiser),
                          json={})
    assert missing.status_code == 422


def test_buyers_cannot_change_what_is_on_air(client: FlaskClient, hall: Hall, buyer: User,
                                             token_for: Headers,
                                             make_showcase: Callable[..., Showcase]) -> None:
    showcase = make_showcase(hall)
    response = client.post(f"/api/v1/halls/{hall.id}/on-air", headers=token_for(buyer),
                           json={"showcase_id": showcase.id})
    assert response.status_code == 403
    assert client.get(f"/api/v1/halls/{hall.id}").json["on_air"] is None


def test_the_hall_reports_viewer_figures(client: FlaskClient, hall: Hall,
                                         audience: presence.Presence) -> None:
    for sid in ("a", "b", "c"):
        audience.join(sid, hall_id=hall.id, fair_id=hall.fair_id)
    audience.leave("c", hall_id=hall.id)
    figures = client.get(f"/api/v1/halls/{hall.id}").json
    assert (figures["viewers"], figures["visits"], figures["peak_viewers"]) == (2, 3, 3)


def test_unknown_halls_are_not_found(client: FlaskClient, fair: Fair) -> None:
    assert client.get("/api/v1/halls/999").status_code == 404
    assert client.get("/api/v1/halls/999/showcases").status_code == 404
    assert client.get("/api/v1/fairs/999/halls").status_code == 404


def test_organisers_hide_chat_and_it_leaves_the_history(
    client: FlaskClient, hall: Hall, buyer: User, organiser: User, token_for: Headers
) -> None:
    message = service.post_chat(hall, user=buyer, text="<i>买一送一</i>")
    history = client.get(f"/api/v1/halls/{hall.id}/chat").json
    assert [(line["id"], line["text"]) for line in history] == [(message.id, "<i>买一送一</i>")]
    refused = client.post(f"/api/v1/chat/{message.id}/hide", headers=token_for(buyer))
    assert refused.status_code == 403
    hidden = client.post(f"/api/v1/chat/{message.id}/hide", headers=token_for(organiser))
    assert hidden.status_code == 200
    assert hidden.json["hidden_at"] is not None
    assert client.get(f"/api/v1/halls/{hall.id}/chat").json == []
    assert client.post("/api/v1/chat/999/hide", headers=token_for(organiser)).status_code == 404


def test_the_openapi_document_lists_the_halls_api(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"/api/v1/fairs/{fair_id}/halls", "/api/v1/halls/{hall_id}",
            "/api/v1/halls/{hall_id}/showcases", "/api/v1/halls/{hall_id}/on-air",
            "/api/v1/chat/{message_id}/hide"} <= set(paths)


def test_health_in_the_embedded_deployment(client: FlaskClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json == {"ok": True, "database": "ok", "redis": "off", "queue": {
        "kind": "none", "channel": None, "subscribed": None, "subscribers": None,
        "processes": None}}
