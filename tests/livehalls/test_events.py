"""The /live namespace: who may connect, join_dashboard, and what a dashboard then hears."""

from __future__ import annotations

import dataclasses
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_socketio.test_client import SocketIOTestClient
from sqlalchemy import update

from deals import service as deal_service
from deals.models import Intent
from exhibitors.models import Project
from fair import create_app
from fair import service as fair_service
from fair.accounts.models import Role, User
from fair.extensions import db, socketio
from fair.models import Fair, FairStatus
from livehalls import broadcast, presence, rooms, service
from livehalls.models import Hall, Showcase
from livehalls.schemas import (
    ChatMessageEventSchema,
    DealEventSchema,
    DealsMessageSchema,
    HallTotalsSchema,
    SeqMessageSchema,
    TotalsSchema,
)
from tests.conftest import base_config
from tests.pages import cookie_session, csrf_token

LiveClient = Callable[..., SocketIOTestClient]
Headers = Callable[[User], dict[str, str]]


def sign_in_with_cookie(client: FlaskClient, user: User) -> None:
    cookie_session(client, user)


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
    assert ack == {"ok": False, "error": {"code": "unauthorized", "message": "请先登录。",
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
        "code": "error", "message": "服务器出错，未做任何更改。",
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


def wait_for_totals(live: SocketIOTestClient, seq: int, *, deal_count: int = 0
                    ) -> tuple[list[Any], list[Any]]:
    """Collect what the dashboard hears until the totals reach `seq` and `deal_count` intents
    came (at most ten seconds). The totals read at a flush may already count intents that leave
    in the next window's `deals`, so the totals alone do not say that every intent came."""
    deals: list[Any] = []
    totals: list[Any] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        totals and totals[-1]["seq"] >= seq
        and sum(len(message["deals"]) for message in deals) >= deal_count
    ):
        for message in live.get_received(rooms.NAMESPACE):
            if message["name"] in ("deals", "totals"):
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
    deals, totals = wait_for_totals(dashboard, 1, deal_count=1)

    assert [message["deals"] for message in deals] == [[{
        "id": deal["id"], "hall_id": None, "project": {"id": project.id, "title": "蜀绣非遗体验课"},
        "buyer_province": "CN-CQ", "amount": "10423.50", "created_at": deals[0]["deals"][0][
            "created_at"], "secured": False,
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
        deals, totals = wait_for_totals(dashboard, burst, deal_count=burst)
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
    audience: presence.Presence, make_showcase: Callable[..., Showcase],
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
    assert not HallTotalsSchema().validate(ack["totals"])
    assert [line["text"] for line in ack["chat"]] == ["第0条", "第2条"]
    assert not ChatMessageEventSchema(many=True).validate(ack["chat"])


@pytest.mark.parametrize(("payload", "code"), [
    ({"hall_id": 999}, "not_found"), ({}, "invalid"), ({"hall_id": "1"}, "invalid"),
    ({"hall_id": 1, "fair_id": 1}, "invalid"),
])
def test_join_hall_refuses_unknown_halls_and_malformed_payloads(
    live_client: LiveClient, hall: Hall, payload: Any, code: str, audience: presence.Presence
) -> None:
    ack = enter(live_client(), payload)
    assert ack["ok"] is False
    assert ack["error"]["code"] == code
    assert audience.figures(hall.id, hall.fair_id)[0].visits == 0


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
    enter(speaker, {"hall_id": hall.id})
    ack = say(speaker, hall, text)
    assert ack["ok"] is False
    assert ack["error"]["code"] == code


def test_chat_refuses_a_user_posting_too_fast(
    live_client: LiveClient, token_for: Headers, hall: Hall, buyer: User
) -> None:
    speaker = live_client(token_of(token_for, buyer))
    enter(speaker, {"hall_id": hall.id})
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


def next_window(audience: presence.Presence) -> None:
    """Tick as if a window had passed since the last tick: a hall's figures are due again."""
    now = audience.clock() + audience.window
    audience.clock = lambda: now
    audience.tick()


def visitor(client: FlaskClient, live_client: LiveClient, number: int) -> SocketIOTestClient:
    """A connection of the anonymous visitor whose first-party cookie is `number`."""
    client.set_cookie("fair_visitor", f"{number:032x}")
    return live_client()


def test_viewer_figures_count_viewers_and_visits(
    client: FlaskClient, live_client: LiveClient, hall: Hall, organiser: User,
    token_for: Headers, fair: Fair, audience: presence.Presence,
) -> None:
    dashboard = live_client(token_of(token_for, organiser))
    dashboard_ack = join(dashboard, {"fair_id": fair.id})
    assert dashboard_ack["viewers"][0]["viewers"] == 0
    first, second = visitor(client, live_client, 1), visitor(client, live_client, 2)
    enter(first, {"hall_id": hall.id})
    enter(second, {"hall_id": hall.id})
    enter(second, {"hall_id": hall.id})  # joining again on one connection: no new visit
    next_window(audience)
    figures = received(first, "viewers")[-1]
    assert (figures["viewers"], figures["visits"], figures["peak_viewers"]) == (2, 2, 2)
    assert received(dashboard, "viewers")[-1] == figures

    second.emit("leave_hall", {"hall_id": hall.id}, namespace=rooms.NAMESPACE)
    next_window(audience)
    assert received(first, "viewers")[-1]["viewers"] == 1
    enter(second, {"hall_id": hall.id})
    first.disconnect(namespace=rooms.NAMESPACE)
    next_window(audience)
    figures = received(second, "viewers")[-1]
    # Back in the hall soon after leaving it: no new visit.
    assert (figures["viewers"], figures["visits"], figures["peak_viewers"]) == (1, 2, 2)
    assert figures["fair"] == {"viewers": 1, "visits": 2, "peak_viewers": 2}


def test_two_browsers_behind_one_address_that_opened_the_hall_page_are_two_viewers(
    app: Flask, hall: Hall, fair: Fair, audience: presence.Presence,
) -> None:
    # An office's or a school's visitors share an address; the hall page gives each browser
    # its visitor cookie before its socket connects.
    sockets = []
    for browser in [app.test_client() for _ in range(2)]:
        assert "fair_visitor=" in browser.get(f"/halls/{hall.id}").headers["Set-Cookie"]
        sockets.append(socketio.test_client(app, namespace=rooms.NAMESPACE,
                                            flask_test_client=browser))
        enter(sockets[-1], {"hall_id": hall.id})
    assert audience.figures(hall.id, fair.id)[0].viewers == 2
    for live in sockets:
        live.disconnect(namespace=rooms.NAMESPACE)
    refusing = app.test_client()
    response = refusing.get(f"/halls/{hall.id}", headers={"DNT": "1"})
    assert "fair_visitor=" not in response.headers.get("Set-Cookie", "")


def test_one_persons_many_sockets_and_reconnects_are_one_viewer_and_one_visit(
    client: FlaskClient, live_client: LiveClient, hall: Hall, make_user: Callable[..., User],
    token_for: Headers, fair: Fair, audience: presence.Presence,
) -> None:
    # Thirty sockets of one anonymous visitor (its cookie), thirty of one client that sends no
    # cookie (its address), and a signed-in user's two tabs and a reconnect.
    crowd = [visitor(client, live_client, 7) for _ in range(30)]
    client.delete_cookie("fair_visitor")
    crowd += [live_client() for _ in range(30)]
    user = make_user(Role.buyer)
    tabs = [live_client(token_of(token_for, user)) for _ in range(2)]
    for live in crowd + tabs:
        enter(live, {"hall_id": hall.id})
    tabs[0].disconnect(namespace=rooms.NAMESPACE)
    tabs[1].disconnect(namespace=rooms.NAMESPACE)
    enter(live_client(token_of(token_for, user)), {"hall_id": hall.id})  # reconnected
    assert audience.figures(hall.id, fair.id) == (
        presence.Figures(viewers=3, visits=3, peak_viewers=3),
        presence.Figures(viewers=3, visits=3, peak_viewers=3))
    # Long after leaving, coming back is a visit again.
    for live in crowd[30:]:
        live.disconnect(namespace=rooms.NAMESPACE)
    later = audience.clock() + presence.VISIT_WINDOW
    audience.clock = lambda: later
    enter(live_client(), {"hall_id": hall.id})
    assert audience.figures(hall.id, fair.id)[0] == presence.Figures(
        viewers=3, visits=4, peak_viewers=3)


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
    deals, totals = wait_for_totals(viewer, 1, deal_count=1)

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
    assert snapshot["hall"]["visits"] == 1  # the same viewer reconnected: no new visit


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


# What the joins give and what each room hears of the fair's deals and totals.


def record(project: Project, buyer: User, amount_fen: int, **extra: Any) -> Intent:
    return deal_service.record_intent(project.id, buyer=buyer, amount_fen=amount_fen,
                                      idempotency_key=uuid.uuid4().hex, **extra)


def test_the_acks_carry_the_newest_active_intents_oldest_first(
    live_client: LiveClient, token_for: Headers, organiser: User, buyer: User, hall: Hall,
    project: Project,
) -> None:
    intents = [record(project, buyer, 100 * number, hall_id=hall.id) for number in range(1, 24)]
    deal_service.withdraw_intent(intents[-1], buyer=buyer)
    db.session.execute(update(Intent).where(Intent.id == intents[-2].id).values(secured=True))
    db.session.commit()
    newest = [intent.id for intent in intents[-22:-1]][-broadcast.ACK_DEALS:]

    dashboard_ack = join(live_client(token_of(token_for, organiser)), {"fair_id": hall.fair_id})
    hall_ack = enter(live_client(), {"hall_id": hall.id})

    for ack in (dashboard_ack, hall_ack):
        assert [deal["id"] for deal in ack["deals"]] == newest
        assert not DealEventSchema(many=True).validate(ack["deals"])
        assert [deal["secured"] for deal in ack["deals"]][-2:] == [False, True]
        assert ack["deals"][-1]["amount"] == "22.00"
        assert ack["deals"][-1]["project"] == {"id": project.id, "title": project.title}
    assert "by_exhibitor" in dashboard_ack["totals"]
    assert "by_exhibitor" not in hall_ack["totals"]


def test_hall_rooms_hear_the_totals_without_by_exhibitor_and_dashboards_with_it(
    live_client: LiveClient, token_for: Headers, organiser: User, buyer: User, hall: Hall,
    project: Project, audience: presence.Presence,
) -> None:
    dashboard = live_client(token_of(token_for, organiser))
    join(dashboard, {"fair_id": hall.fair_id})
    viewer = live_client()
    enter(viewer, {"hall_id": hall.id})

    record(project, buyer, 5_000_00, hall_id=hall.id)

    _, dashboard_totals = wait_for_totals(dashboard, 1)
    _, hall_totals = wait_for_totals(viewer, 1)
    assert not TotalsSchema().validate(dashboard_totals[-1])
    assert dashboard_totals[-1]["by_exhibitor"] == {
        str(project.exhibitor_id): {"amount": "5000.00", "deal_count": 1}}
    assert not HallTotalsSchema().validate(hall_totals[-1])
    assert hall_totals[-1] == {key: value for key, value in dashboard_totals[-1].items()
                               if key != "by_exhibitor"}


def follow_by_hand(app: Flask) -> broadcast.Coalescer:
    """The app's coalescer, sending only when told: `follow()` polls, `flush()` sends."""
    coalescer = broadcast.coalescer()
    coalescer.autoflush = False
    coalescer.autofollow = False
    return coalescer


def sign_elsewhere(other: Flask, project_id: int, buyer_id: int, amount_fen: int) -> int:
    """Sign as another process would (its own app and engine), whose news never comes here."""
    with other.app_context():
        intent = deal_service.record_intent(project_id, buyer=db.session.get(User, buyer_id),
                                            amount_fen=amount_fen,
                                            idempotency_key=uuid.uuid4().hex)
        return intent.id


@pytest.fixture
def other_process(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    """A second app on the same SQLite file, standing for the CLI's process: it writes with
    its own engine, and its news reaches no client of this app."""
    other = create_app(base_config(tmp_path, tmp_path / "fair.sqlite"))
    other.extensions[broadcast.EXTENSION_KEY].autoflush = False
    yield other
    with other.app_context():
        db.engine.dispose()


def test_an_intent_committed_by_another_process_reaches_a_watching_dashboard(
    app: Flask, other_process: Flask, live_client: LiveClient, token_for: Headers,
    organiser: User, buyer: User, project: Project,
) -> None:
    dashboard = live_client(token_of(token_for, organiser))
    ack = join(dashboard, {"fair_id": project.fair_id})

    signed = [sign_elsewhere(other_process, project.id, buyer.id, amount)
              for amount in (100_00, 250_00)]

    # Nothing reached this process: its poll of the committed seq finds them (POLL seconds).
    deals, totals = wait_for_totals(dashboard, ack["totals"]["seq"] + 2, deal_count=2)
    assert [deal["id"] for message in deals for deal in message["deals"]] == signed
    assert not DealsMessageSchema(many=True).validate(deals)
    assert (totals[-1]["seq"], totals[-1]["amount"]) == (2, "350.00")


def test_news_found_in_the_database_goes_out_once_beside_the_news_that_came_here(
    app: Flask, other_process: Flask, live_client: LiveClient, token_for: Headers,
    organiser: User, buyer: User, project: Project,
) -> None:
    coalescer = follow_by_hand(app)
    dashboard = live_client(token_of(token_for, organiser))
    join(dashboard, {"fair_id": project.fair_id})

    elsewhere = sign_elsewhere(other_process, project.id, buyer.id, 100_00)
    here = record(project, buyer, 200_00).id  # committed after, flushed first
    coalescer.flush()
    assert [deal["id"] for deal in received_deals(dashboard)] == [here]

    # The flush read seq 2 for one intent of its own: the poll looks in the database.
    assert coalescer.follow() is True
    coalescer.flush()
    heard = dashboard.get_received(rooms.NAMESPACE)
    assert [deal["id"] for message in heard if message["name"] == "deals"
            for deal in message["args"][0]["deals"]] == [elsewhere]
    # Each totals snapshot went out once: nothing new, nothing sent.
    assert [message["args"][0]["seq"] for message in heard if message["name"] == "totals"] == []
    coalescer.follow()
    coalescer.flush()
    assert dashboard.get_received(rooms.NAMESPACE) == []


def test_news_missing_here_is_looked_for_even_while_this_process_is_busy(
    app: Flask, other_process: Flask, live_client: LiveClient, token_for: Headers,
    organiser: User, buyer: User, project: Project,
) -> None:
    coalescer = follow_by_hand(app)
    dashboard = live_client(token_of(token_for, organiser))
    join(dashboard, {"fair_id": project.fair_id})
    elsewhere = sign_elsewhere(other_process, project.id, buyer.id, 100_00)
    record(project, buyer, 200_00)
    coalescer.flush()  # seq 2 for one intent of its own: one is missing
    dashboard.get_received(rooms.NAMESPACE)

    busy = record(project, buyer, 300_00).id  # news of its own waits to be sent
    coalescer.follow()
    coalescer.flush()

    assert [deal["id"] for deal in received_deals(dashboard)] == [elsewhere, busy]


def test_a_fair_nobody_watches_costs_no_poll(
    app: Flask, live_client: LiveClient, token_for: Headers, organiser: User, fair: Fair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    coalescer = follow_by_hand(app)
    polled: list[list[int]] = []
    readers = coalescer.required_readers()
    monkeypatch.setattr(coalescer, "readers", dataclasses.replace(
        readers, seqs=lambda fair_ids: polled.append(list(fair_ids)) or readers.seqs(fair_ids)))
    dashboard = live_client(token_of(token_for, organiser))
    join(dashboard, {"fair_id": fair.id})
    assert coalescer.follow() is True
    assert polled == [[fair.id]]

    dashboard.disconnect(namespace=rooms.NAMESPACE)
    assert coalescer.follow() is False
    assert polled == [[fair.id]]


def test_watchers_hear_the_committed_seq_as_a_heartbeat(
    app: Flask, other_process: Flask, live_client: LiveClient, token_for: Headers,
    organiser: User, buyer: User, hall: Hall, project: Project, audience: presence.Presence,
) -> None:
    coalescer = follow_by_hand(app)
    dashboard = live_client(token_of(token_for, organiser))
    join(dashboard, {"fair_id": hall.fair_id})
    viewer = live_client()
    enter(viewer, {"hall_id": hall.id})
    sign_elsewhere(other_process, project.id, buyer.id, 100_00)

    coalescer.follow(heartbeat=True)

    for client in (dashboard, viewer):
        beats = received(client, "seq")
        assert beats == [{"fair_id": hall.fair_id, "seq": 1}]
        assert not SeqMessageSchema().validate(beats[0])


def test_totals_just_sent_stand_for_the_heartbeat(
    app: Flask, client: FlaskClient, live_client: LiveClient, token_for: Headers,
    organiser: User, buyer: User, hall: Hall, project: Project, other_process: Flask,
) -> None:
    coalescer = follow_by_hand(app)
    dashboard = live_client(token_of(token_for, organiser))
    join(dashboard, {"fair_id": hall.fair_id})
    sign(client, token_for(buyer), project, "800.00", hall_id=hall.id)
    coalescer.flush()
    assert received(dashboard, "totals")[-1]["seq"] == 1

    coalescer.follow(heartbeat=True)
    assert received(dashboard, "seq") == []  # the totals named seq 1 a moment ago

    sign_elsewhere(other_process, project.id, buyer.id, 100_00)
    coalescer.follow(heartbeat=True)
    assert received(dashboard, "seq") == [{"fair_id": hall.fair_id, "seq": 2}]


def test_the_heartbeat_goes_out_every_few_seconds_while_someone_watches(
    live_client: LiveClient, token_for: Headers, organiser: User, fair: Fair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(broadcast, "HEARTBEAT", 0.2)
    monkeypatch.setattr(broadcast, "POLL", 0.05)
    dashboard = live_client(token_of(token_for, organiser))
    join(dashboard, {"fair_id": fair.id})

    beats: list[Any] = []
    deadline = time.monotonic() + 5
    while len(beats) < 2 and time.monotonic() < deadline:
        beats += received(dashboard, "seq")
        time.sleep(0.05)
    assert beats[:2] == [{"fair_id": fair.id, "seq": 0}] * 2


def received_deals(live: SocketIOTestClient) -> list[dict[str, Any]]:
    return [deal for message in received(live, "deals") for deal in message["deals"]]


# Who may speak, and for how long: halls joined, open fairs, live credentials, the fair's origin.


def test_chat_is_refused_in_a_hall_the_socket_has_not_joined(
    fair: Fair, live_client: LiveClient, token_for: Headers, hall: Hall, buyer: User,
    make_hall: Callable[..., Hall],
) -> None:
    other_hall = make_hall(fair, name="二号直播厅")
    speaker = live_client(token_of(token_for, buyer))
    enter(speaker, {"hall_id": other_hall.id})
    ack = say(speaker, hall, "我不在这个厅")
    assert (ack["ok"], ack["error"]["code"]) == (False, "not_in_hall")
    leave = speaker.emit("leave_hall", {"hall_id": other_hall.id}, namespace=rooms.NAMESPACE,
                         callback=True)
    assert leave == {"ok": True}
    assert say(speaker, other_hall, "离开之后")["error"]["code"] == "not_in_hall"
    assert service.recent_chat(hall) == service.recent_chat(other_hall) == []


def test_chat_is_refused_in_the_halls_of_a_closed_fair(
    fair: Fair, live_client: LiveClient, token_for: Headers, hall: Hall, buyer: User,
    organiser: User,
) -> None:
    speaker = live_client(token_of(token_for, buyer))
    enter(speaker, {"hall_id": hall.id})
    assert say(speaker, hall, "开幕中") == {"ok": True}
    fair_service.update_fair(fair, organiser=organiser, changes={"status": FairStatus.closed})
    ack = say(speaker, hall, "闭幕后")
    assert (ack["ok"], ack["error"]["code"]) == (False, "fair_closed")
    assert [line.text for line in service.recent_chat(hall)] == ["开幕中"]


def test_a_revoked_token_ends_its_socket_at_the_next_event(
    client: FlaskClient, live_client: LiveClient, token_for: Headers, hall: Hall, buyer: User,
) -> None:
    headers = token_for(buyer)
    speaker = live_client(token_of(lambda _: headers, buyer))
    enter(speaker, {"hall_id": hall.id})
    assert say(speaker, hall, "撤销之前") == {"ok": True}
    assert client.post("/api/v1/auth/token/revoke", headers=headers).status_code == 204
    ack = say(speaker, hall, "撤销之后")
    assert (ack["ok"], ack["error"]["code"]) == (False, "bad_token")
    assert not speaker.is_connected(rooms.NAMESPACE)
    assert [line.text for line in service.recent_chat(hall)] == ["撤销之前"]


def test_signing_out_ends_the_sockets_of_that_session(
    client: FlaskClient, live_client: LiveClient, hall: Hall, buyer: User,
) -> None:
    sign_in_with_cookie(client, buyer)
    speaker = live_client()
    enter(speaker, {"hall_id": hall.id})
    assert say(speaker, hall, "登录中") == {"ok": True}
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/")})
    ack = say(speaker, hall, "退出之后")
    assert (ack["ok"], ack["error"]["code"]) == (False, "bad_token")
    assert not speaker.is_connected(rooms.NAMESPACE)


@pytest.mark.parametrize(("origin", "accepted"), [
    (None, True), ("http://localhost", True), ("https://evil.example", False),
    ("http://localhost.evil.example", False), ("null", False),
])
def test_socket_io_accepts_only_the_fairs_own_origin(
    client: FlaskClient, origin: str | None, accepted: bool,
) -> None:
    headers = {} if origin is None else {"Origin": origin}
    response = client.get("/socket.io/?EIO=4&transport=polling", headers=headers)
    assert (response.status_code == 200) is accepted, response.get_data(as_text=True)[:200]


def test_socket_io_accepts_the_origins_it_is_told(tmp_path: Path, migrated_database: Path
                                                  ) -> None:
    database_file = tmp_path / "other.sqlite"
    shutil.copy(migrated_database, database_file)
    app = create_app({**base_config(tmp_path, database_file),
                      "ALLOWED_ORIGINS": ["https://screen.fair.example"]})
    with app.app_context():
        response = app.test_client().get("/socket.io/?EIO=4&transport=polling",
                                         headers={"Origin": "https://screen.fair.example"})
        assert response.status_code == 200
        db.engine.dispose()
