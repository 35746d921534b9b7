"""The /live namespace: who may connect, join_dashboard, and what a dashboard then hears."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_socketio.test_client import SocketIOTestClient
from sqlalchemy import update

from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from livehalls import presence, rooms, service
from livehalls.models import Hall, Showcase
from livehalls.schemas import ChatMessageEventSchema, DealsMessageSchema, TotalsSchema

LiveClient = Callable[..., SocketIOTestClient]
Headers = Callable[[User], dict[str, str]]


def sign_in_with_cookie(client: FlaskClient, user: User) -> None:
    with client.session_transaction() as session:
        session["user_id"] = user.id


def join(live: SocketIOTestClient, payload: Any) -> dict[str, Any]:
    ack: dict[str, Any] = live.emit("join_dashboard", payload, namespace=rooms.NAMESPACE,
                                    callback=True)
    return ack


def sign(client: FlaskClient, headers: dict[str, str], project: Project, amount: str,
         **extra: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/projects/{project.id}/deals",
                           json={"amount": amount, **extra},
                           headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.json
    return response.json


def received(live: SocketIOTestClient, event: str) -> list[Any]:
    return [message["args"][0] for message in live.get_received(rooms.NAMESPACE)
            if message["name"] == event]


@pytest.fixture
def buyer(make_user: Callable[..., User]) -> User:
    return make_user(Role.buyer, province="CN-CQ")


def test_a_token_connects_and_an_organiser_joins_the_dashboard(
    live_client: LiveClient, token_for: Headers, organiser: User, fair: Fair
) -> None:
    token = token_for(organiser)["Authorization"].removeprefix("Bearer ")
    live = live_client({"token": token})

    assert live.is_connected(rooms.NAMESPACE)
    ack = join(live, {"fair_id": fair.id})
    assert ack["ok"] is True
    assert not TotalsSchema().validate(ack["totals"])
    assert ack["totals"]["seq"] == 0
    assert ack["halls"] == []


def test_the_session_cookie_connects_as_its_user(
    client: FlaskClient, live_client: LiveClient, organiser: User, fair: Fair
) -> None:
    sign_in_with_cookie(client, organiser)
    live = live_client()

    assert join(live, {"fair_id": fair.id})["ok"] is True


def test_anonymous_viewers_connect_but_may_not_open_the_dashboard(
    live_client: LiveClient, fair: Fair
) -> None:
    live = live_client()

    assert live.is_connected(rooms.NAMESPACE)
    ack = join(live, {"fair_id": fair.id})
    assert ack == {"ok": False, "error": {"code": "unauthorized", "message": "Sign in first.",
                                          "fields": {}}}


@pytest.mark.parametrize("auth", [
    {"token": "not-a-token"},
    {"token": ""},
    {"token": 12345},
    {"token": None, "user_id": 1},
    {"token": ["a"]},
])
def test_a_bad_token_is_refused_not_downgraded_to_anonymous(
    client: FlaskClient, live_client: LiveClient, organiser: User, auth: dict[str, Any]
) -> None:
    # Even with a valid cookie alongside: a client that sent a bad token is refused.
    sign_in_with_cookie(client, organiser)

    assert not live_client(auth).is_connected(rooms.NAMESPACE)


def test_a_revoked_token_is_refused(
    client: FlaskClient, live_client: LiveClient, token_for: Headers, organiser: User
) -> None:
    headers = token_for(organiser)
    token = headers["Authorization"].removeprefix("Bearer ")
    assert client.post("/api/v1/auth/token/revoke", headers=headers).status_code == 204

    assert not live_client({"token": token}).is_connected(rooms.NAMESPACE)


@pytest.mark.parametrize("role", [Role.buyer, Role.exhibitor])
def test_only_organisers_open_the_dashboard(
    live_client: LiveClient, token_for: Headers, make_user: Callable[..., User], fair: Fair,
    role: Role,
) -> None:
    user = make_user(role)
    live = live_client({"token": token_for(user)["Authorization"].removeprefix("Bearer ")})

    ack = join(live, {"fair_id": fair.id})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "wrong_role"


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "fair_id"),
    ({"fair_id": "1"}, "fair_id"),
    ({"fair_id": 1.5}, "fair_id"),
    ({"fair_id": 1, "extra": True}, "extra"),
    ("1", "_schema"),
    (None, "_schema"),
])
def test_join_dashboard_refuses_a_malformed_payload(
    client: FlaskClient, live_client: LiveClient, organiser: User, payload: Any, field: str
) -> None:
    sign_in_with_cookie(client, organiser)

    ack = join(live_client(), payload)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "invalid"
    assert field in ack["error"]["fields"]


def test_join_dashboard_of_an_unknown_fair_is_not_found(
    client: FlaskClient, live_client: LiveClient, organiser: User
) -> None:
    sign_in_with_cookie(client, organiser)

    ack = join(live_client(), {"fair_id": 999})
    assert ack["error"]["code"] == "not_found"


def test_an_unexpected_failure_answers_in_the_error_shape(
    client: FlaskClient, live_client: LiveClient, organiser: User, fair: Fair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sign_in_with_cookie(client, organiser)

    def broken(*args: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(service, "access_dashboard", broken)
    ack = join(live_client(), {"fair_id": fair.id})
    assert ack == {"ok": False, "error": {
        "code": "error", "message": "Something went wrong on our side; nothing was changed.",
        "fields": {}}}


def test_the_ack_carries_the_current_totals_and_the_halls(
    client: FlaskClient, live_client: LiveClient, token_for: Headers, organiser: User,
    buyer: User, fair: Fair, make_project: Callable[..., Project],
) -> None:
    hall = Hall(fair_id=fair.id, name="一号厅")
    db.session.add(hall)
    db.session.commit()
    project = make_project(fair)
    sign(client, token_for(buyer), project, "120000.00", hall_id=hall.id)
    sign_in_with_cookie(client, organiser)

    ack = join(live_client(), {"fair_id": fair.id})

    assert ack["totals"] == client.get(f"/api/v1/fairs/{fair.id}/totals").json
    assert ack["totals"]["by_hall"] == {str(hall.id): {"amount": "120000.00", "deal_count": 1}}
    assert ack["halls"] == [{"id": hall.id, "name": "一号厅"}]


def wait_for_totals(live: SocketIOTestClient, seq: int) -> tuple[list[Any], list[Any]]:
    """Collect what the dashboard hears until the totals reach `seq` (at most five seconds)."""
    deals: list[Any] = []
    totals: list[Any] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (totals and totals[-1]["seq"] >= seq):
        for message in live.get_received(rooms.NAMESPACE):
            (deals if message["name"] == "deals" else totals).append(message["args"][0])
        time.sleep(0.02)
    return deals, totals


def test_the_dashboard_hears_each_new_intent_and_other_clients_do_not(
    client: FlaskClient, live_client: LiveClient, token_for: Headers, organiser: User,
    buyer: User, fair: Fair, make_project: Callable[..., Project],
) -> None:
    project = make_project(fair, title="蜀绣非遗体验课")
    buyer_headers = token_for(buyer)
    bystander = live_client()
    dashboard = live_client({"token": token_for(organiser)["Authorization"][7:]})
    join(dashboard, {"fair_id": fair.id})

    deal = sign(client, buyer_headers, project, "10423.50")
    deals, totals = wait_for_totals(dashboard, 1)

    assert [message["deals"] for message in deals] == [[{
        "id": deal["id"], "hall_id": None, "project": {"id": project.id, "title": "蜀绣非遗体验课"},
        "buyer_province": "CN-CQ", "amount": "10423.50", "created_at": deals[0]["deals"][0][
            "created_at"],
    }]]
    assert not DealsMessageSchema().validate(deals[0])
    assert totals[-1] == client.get(f"/api/v1/fairs/{fair.id}/totals").json
    assert received(bystander, "deals") == []
    assert received(bystander, "totals") == []


def test_a_burst_reaches_each_dashboard_as_fewer_messages_than_intents(
    client: FlaskClient, live_client: LiveClient, token_for: Headers, organiser: User,
    buyer: User, fair: Fair, make_project: Callable[..., Project],
) -> None:
    project = make_project(fair)
    buyer_headers = token_for(buyer)
    organiser_token = token_for(organiser)["Authorization"][7:]
    dashboards = [live_client({"token": organiser_token}) for _ in range(2)]
    for dashboard in dashboards:
        join(dashboard, {"fair_id": fair.id})

    burst = 30
    signed = [sign(client, buyer_headers, project, f"{number}.00")["id"]
              for number in range(1, burst + 1)]

    for dashboard in dashboards:
        deals, totals = wait_for_totals(dashboard, burst)
        assert [deal["id"] for message in deals for deal in message["deals"]] == signed
        assert totals[-1]["seq"] == burst
        assert totals[-1]["amount"] == "465.00"
        assert len(deals) < burst
        assert len(totals) < burst


# Halls: join_hall, leave_hall, chat and what a hall's viewers hear.


def enter(live: SocketIOTestClient, payload: Any) -> dict[str, Any]:
    ack: dict[str, Any] = live.emit("join_hall", payload, namespace=rooms.NAMESPACE,
                                    callback=True)
    return ack


def say(live: SocketIOTestClient, hall: Hall, text: Any) -> dict[str, Any]:
    ack: dict[str, Any] = live.emit("chat", {"hall_id": hall.id, "text": text},
                                    namespace=rooms.NAMESPACE, callback=True)
    return ack


def token_of(token_for: Headers, user: User) -> dict[str, str]:
    return {"token": token_for(user)["Authorization"].removeprefix("Bearer ")}


def test_anyone_joins_a_hall_and_gets_a_snapshot(
    live_client: LiveClient, hall: Hall, buyer: User, organiser: User,
    tracker: presence.Presence, make_showcase: Callable[..., Showcase],
) -> None:
    showcase = make_showcase(hall)
    service.put_on_air(hall, organiser=organiser, showcase_id=showcase.id)
    lines = [service.post_chat(hall, user=buyer, text=f"第{number}条") for number in range(3)]
    service.hide_chat(lines[1], organiser=organiser)

    ack = enter(live_client(), {"hall_id": hall.id})

    assert ack["ok"] is True
    assert ack["hall"]["id"] == hall.id
    assert ack["hall"]["on_air"]["id"] == showcase.id
    assert (ack["hall"]["viewers"], ack["hall"]["visits"], ack["hall"]["peak_viewers"]) == (1, 1, 1)
    assert not TotalsSchema().validate(ack["totals"])
    assert [line["text"] for line in ack["chat"]] == ["第0条", "第2条"]
    assert not ChatMessageEventSchema(many=True).validate(ack["chat"])


@pytest.mark.parametrize(("payload", "code"), [
    ({"hall_id": 999}, "not_found"), ({}, "invalid"), ({"hall_id": "1"}, "invalid"),
    ({"hall_id": 1, "fair_id": 1}, "invalid"),
])
def test_join_hall_refuses_unknown_halls_and_malformed_payloads(
    live_client: LiveClient, hall: Hall, payload: Any, code: str, tracker: presence.Presence
) -> None:
    ack = enter(live_client(), payload)
    assert ack["ok"] is False
    assert ack["error"]["code"] == code
    assert tracker.figures(hall.id, hall.fair_id)[0].visits == 0


def test_a_signed_in_viewer_chats_and_the_hall_hears_it_as_text(
    fair: Fair, live_client: LiveClient, token_for: Headers, hall: Hall, buyer: User,
    make_hall: Callable[..., Hall],
) -> None:
    other_hall = make_hall(fair, name="二号直播厅")
    speaker = live_client(token_of(token_for, buyer))
    listener = live_client()
    elsewhere = live_client()
    enter(speaker, {"hall_id": hall.id})
    enter(listener, {"hall_id": hall.id})
    enter(elsewhere, {"hall_id": other_hall.id})
    text = '<img src=x onerror="alert(1)">好节目'

    assert say(speaker, hall, text) == {"ok": True}

    heard = received(listener, "chat")
    assert [(line["text"], line["user"]["name"]) for line in heard] == [(text, buyer.name)]
    assert not ChatMessageEventSchema().validate(heard[0])
    assert received(elsewhere, "chat") == []


def test_anonymous_viewers_may_not_chat(live_client: LiveClient, hall: Hall) -> None:
    anonymous = live_client()
    enter(anonymous, {"hall_id": hall.id})
    ack = say(anonymous, hall, "你好")
    assert ack["ok"] is False
    assert ack["error"]["code"] == "unauthorized"
    assert service.recent_chat(hall) == []


@pytest.mark.parametrize(("text", "code"), [("长" * 301, "too_long"), ("   ", "invalid"),
                                            (42, "invalid"), ("x" * 2001, "invalid")])
def test_chat_refuses_empty_long_or_malformed_lines(
    live_client: LiveClient, token_for: Headers, hall: Hall, buyer: User, text: Any, code: str
) -> None:
    speaker = live_client(token_of(token_for, buyer))
    ack = say(speaker, hall, text)
    assert ack["ok"] is False
    assert ack["error"]["code"] == code


def test_chat_refuses_a_user_posting_too_fast(
    live_client: LiveClient, token_for: Headers, hall: Hall, buyer: User
) -> None:
    speaker = live_client(token_of(token_for, buyer))
    acks = [say(speaker, hall, f"第{number}条") for number in range(service.CHAT_BURST + 1)]
    assert all(ack["ok"] for ack in acks[:-1])
    assert acks[-1]["ok"] is False
    assert acks[-1]["error"]["code"] == "too_fast"


def test_a_hidden_line_leaves_every_page_and_the_next_snapshot(
    client: FlaskClient, live_client: LiveClient, token_for: Headers, hall: Hall, buyer: User,
    organiser: User,
) -> None:
    viewer = live_client()
    enter(viewer, {"hall_id": hall.id})
    line = service.post_chat(hall, user=buyer, text="加微信买便宜票")

    response = client.post(f"/api/v1/chat/{line.id}/hide", headers=token_for(organiser))

    assert response.status_code == 200
    assert received(viewer, "chat_hidden") == [{"hall_id": hall.id, "id": line.id}]
    assert enter(live_client(), {"hall_id": hall.id})["chat"] == []


def next_window(tracker: presence.Presence) -> None:
    """Tick as if a window had passed since the last tick: a hall's figures are due again."""
    now = tracker.clock() + tracker.window
    tracker.clock = lambda: now
    tracker.tick()


def test_viewer_figures_count_connections_and_joins(
    live_client: LiveClient, hall: Hall, organiser: User, token_for: Headers, fair: Fair,
    tracker: presence.Presence,
) -> None:
    dashboard = live_client(token_of(token_for, organiser))
    dashboard_ack = join(dashboard, {"fair_id": fair.id})
    assert dashboard_ack["viewers"][0]["viewers"] == 0
    first, second = live_client(), live_client()
    enter(first, {"hall_id": hall.id})
    enter(second, {"hall_id": hall.id})
    enter(second, {"hall_id": hall.id})  # joining again on one connection: no new visit
    next_window(tracker)
    figures = received(first, "viewers")[-1]
    assert (figures["viewers"], figures["visits"], figures["peak_viewers"]) == (2, 2, 2)
    assert received(dashboard, "viewers")[-1] == figures

    second.emit("leave_hall", {"hall_id": hall.id}, namespace=rooms.NAMESPACE)
    next_window(tracker)
    assert received(first, "viewers")[-1]["viewers"] == 1
    enter(second, {"hall_id": hall.id})
    first.disconnect(namespace=rooms.NAMESPACE)
    next_window(tracker)
    figures = received(second, "viewers")[-1]
    assert (figures["viewers"], figures["visits"], figures["peak_viewers"]) == (1, 3, 2)
    assert figures["fair"] == {"viewers": 1, "visits": 3, "peak_viewers": 2}


def test_hall_viewers_hear_deals_on_air_and_nothing_after_leaving(
    client: FlaskClient, live_client: LiveClient, token_for: Headers, hall: Hall, buyer: User,
    organiser: User, make_showcase: Callable[..., Showcase],
) -> None:
    showcase = make_showcase(hall)
    viewer, leaver = live_client(), live_client()
    enter(viewer, {"hall_id": hall.id})
    enter(leaver, {"hall_id": hall.id})
    leaver.emit("leave_hall", {"hall_id": hall.id}, namespace=rooms.NAMESPACE)

    service.put_on_air(hall, organiser=organiser, showcase_id=showcase.id)
    assert [message["showcase"]["id"] for message in received(viewer, "on_air")] == [
        showcase.id]
    deal = sign(client, token_for(buyer), showcase.project, "5000.00", hall_id=hall.id)
    deals, totals = wait_for_totals(viewer, 1)

    assert [d["id"] for message in deals for d in message["deals"]] == [deal["id"]]
    assert deals[0]["deals"][0]["hall_id"] == hall.id
    assert totals[-1]["by_hall"] == {str(hall.id): {"amount": "5000.00", "deal_count": 1}}
    assert leaver.get_received(rooms.NAMESPACE) == []


def test_a_reconnecting_viewer_gets_the_totals_it_missed(
    client: FlaskClient, live_client: LiveClient, token_for: Headers, hall: Hall, buyer: User,
    project: Project,
) -> None:
    viewer = live_client()
    first = enter(viewer, {"hall_id": hall.id})
    viewer.disconnect(namespace=rooms.NAMESPACE)
    sign(client, token_for(buyer), project, "800.00", hall_id=hall.id)

    again = live_client()
    snapshot = enter(again, {"hall_id": hall.id})

    assert snapshot["totals"]["seq"] == first["totals"]["seq"] + 1
    assert snapshot["totals"]["amount"] == "800.00"
    assert snapshot["hall"]["visits"] == 2


def test_joiners_share_a_snapshot_that_never_shows_a_stale_card_or_own_chat(
    live_client: LiveClient, hall: Hall, buyer: User, make_showcase: Callable[..., Showcase],
) -> None:
    showcase = make_showcase(hall)
    assert enter(live_client(), {"hall_id": hall.id})["hall"]["on_air"] is None

    # Another server process puts the showcase on air: only the database knows.
    db.session.execute(update(Hall).where(Hall.id == hall.id)
                       .values(on_air_showcase_id=showcase.id))
    db.session.commit()
    assert enter(live_client(), {"hall_id": hall.id})["hall"]["on_air"]["id"] == showcase.id

    # This process's own changes replace the snapshot at once.
    service.post_chat(hall, user=buyer, text="刚刚说的")
    assert [line["text"] for line in enter(live_client(), {"hall_id": hall.id})["chat"]] == [
        "刚刚说的"]
