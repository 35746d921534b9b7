"""The audience API: the beacon's refusals, favourites, shares, the portrait, one's own data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from audience.models import Event, Favourite, Rollup, SearchRollup, Share
from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from livehalls import service as hall_service
from livehalls.models import Hall

EVENTS = "/api/v1/events"


def events(**where: Any) -> list[Event]:
    return list(db.session.scalars(select(Event).filter_by(**where).order_by(Event.id)))


def count_events() -> int:
    return db.session.scalar(select(func.count()).select_from(Event)) or 0


@pytest.fixture
def project(fair: Fair, make_project: Callable[..., Project]) -> Project:
    return make_project(fair)


def impression(fair_id: int, project_id: int, **extra: Any) -> dict[str, Any]:
    return {"kind": "impression", "fair_id": fair_id, "object_type": "project",
            "object_id": project_id, **extra}


def test_the_beacon_writes_good_events_and_refuses_each_bad_one_with_its_reason(
    client: FlaskClient, fair: Fair, project: Project, make_fair: Callable[..., Fair],
    make_project: Callable[..., Project],
) -> None:
    other = make_project(make_fair(name="另一场"))
    now = dt.datetime.now(dt.UTC)
    batch = [
        impression(fair.id, project.id),
        {"kind": "teleport", "fair_id": fair.id},
        impression(fair.id, other.id),  # an object of another fair
        impression(fair.id, project.id, at=(now - dt.timedelta(days=3)).isoformat()),
        impression(fair.id, project.id, at=(now + dt.timedelta(hours=1)).isoformat()),
        impression(fair.id, project.id, at="yesterday"),
        {"kind": "intent", "fair_id": fair.id, "object_type": "project",
         "object_id": project.id},  # only the server records intents
        impression(999_999, project.id),
        impression(fair.id, 987_654),
        impression(fair.id, project.id, at=(now - dt.timedelta(minutes=5)).isoformat()),
    ]
    response = client.post(EVENTS, json={"events": batch})
    assert response.status_code == 202
    assert response.json["accepted"] == 2
    assert response.json["refused"] == [
        {"index": 1, "error": "unknown_kind"},
        {"index": 2, "error": "object_of_another_fair"},
        {"index": 3, "error": "time_out_of_range"},
        {"index": 4, "error": "time_out_of_range"},
        {"index": 5, "error": "invalid_time"},
        {"index": 6, "error": "kind_recorded_by_server"},
        {"index": 7, "error": "unknown_fair"},
        {"index": 8, "error": "unknown_object"},
    ]
    written = events(kind="impression")
    assert [(event.project_id, event.category) for event in written] == [
        (project.id, project.category)] * 2
    assert written[0].visitor is not None
    assert written[0].user_id is None
    assert "fair_visitor=" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("body", [
    {"events": [impression(1, 1)] * 501},
    {"events": "all of them"},
    {"nothing": []},
    {"events": [impression(1, 1), 7]},
    [1, 2, 3],
])
def test_a_malformed_or_oversized_batch_is_refused_whole(
    client: FlaskClient, fair: Fair, project: Project, body: Any
) -> None:
    if isinstance(body, dict) and isinstance(body.get("events"), list):
        body = {"events": [impression(fair.id, project.id) if isinstance(event, dict) else event
                           for event in body["events"]]}
    response = client.post(EVENTS, json=body)
    assert response.status_code == 422
    assert "error" in response.json
    assert count_events() == 0


def test_a_watch_reports_seconds_of_a_hall(client: FlaskClient, fair: Fair,
                                           organiser: User) -> None:
    hall = hall_service.create_hall(fair, organiser=organiser, name="主会场", stream_url="")
    answer = client.post(EVENTS, json={"events": [
        {"kind": "watch", "fair_id": fair.id, "object_type": "hall", "object_id": hall.id,
         "seconds": 30},
        {"kind": "watch", "fair_id": fair.id, "object_type": "hall", "object_id": hall.id,
         "seconds": 99_999},
    ]}).json
    assert answer["accepted"] == 1
    assert answer["refused"] == [{"index": 1, "error": "invalid_watch"}]
    rollup = db.session.scalars(select(Rollup).filter_by(kind="watch")).one()
    assert (rollup.hall_id, rollup.count, rollup.seconds) == (hall.id, 1, 30)


@pytest.mark.parametrize("header", [{"DNT": "1"}, {"Sec-GPC": "1"}])
def test_do_not_track_and_global_privacy_control_stop_recording(
    client: FlaskClient, fair: Fair, project: Project, header: dict[str, str]
) -> None:
    answer = client.post(EVENTS, json={"events": [impression(fair.id, project.id)]},
                         headers=header)
    assert answer.status_code == 202
    assert answer.json == {"accepted": 0, "refused": [], "recording": False}
    client.get(f"/projects/{project.id}", headers=header)
    client.get(f"/api/v1/projects/{project.id}", headers=header)
    client.get("/catalogue?q=川剧", headers=header)
    assert count_events() == 0
    # Without the header the same visitor is recorded.
    client.get(f"/projects/{project.id}")
    assert [event.kind for event in events()] == ["view"]


def test_the_server_records_views_searches_and_visits_with_the_buyers_province(
    client: FlaskClient, fair: Fair, project: Project, make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    buyer = make_user(Role.buyer, province="CN-CQ")
    headers = token_for(buyer)  # a sign-in, through the token endpoint
    client.get(f"/api/v1/projects/{project.id}", headers=headers)
    client.get(f"/projects/{project.id}")
    client.get(f"/api/v1/fairs/{fair.id}/projects?q=变脸&category=performance", headers=headers)
    client.get("/catalogue?q=没有这种东西")
    # (The catalogue's 猜你喜欢 strip records its showing too: tests/recommend counts those.)
    kinds = [(event.kind, event.user_id, event.buyer_province) for event in events()
             if not event.kind.startswith("recommendation_")]
    assert kinds == [
        ("sign_in", buyer.id, "CN-CQ"),
        ("view", buyer.id, "CN-CQ"),
        ("view", None, None),
        ("search", buyer.id, "CN-CQ"),
        ("visit", None, None),
        ("search", None, None),
    ]
    searched = events(kind="search")
    assert searched[0].data == {"terms": "变脸", "facets": {"category": "performance"},
                                "results": 1}
    assert searched[0].buyer_organisation_id == buyer.organisation_id
    assert searched[1].data["results"] == 0
    unmet = db.session.scalars(select(SearchRollup).filter_by(terms="没有这种东西")).one()
    assert (unmet.searches, unmet.zero_results) == (1, 1)


def test_favouriting_twice_is_harmless_and_the_favourite_is_listed(
    client: FlaskClient, fair: Fair, project: Project
) -> None:
    url = f"/api/v1/projects/{project.id}/favourite"
    assert client.put(url).status_code == 204
    assert client.put(url).status_code == 204
    assert db.session.scalar(select(func.count()).select_from(Favourite)) == 1
    assert [item["id"] for item in client.get("/api/v1/me/favourites").json["items"]] == [
        project.id]
    page = client.get("/me/favourites").get_data(as_text=True)
    assert project.title in page
    assert client.delete(url).status_code == 204
    assert client.delete(url).status_code == 204
    assert client.get("/api/v1/me/favourites").json["items"] == []
    # Each favourite was counted as it was kept, in its own transaction.
    assert [event.kind for event in events(kind="favourite")] == ["favourite"]


def test_another_visitor_has_favourites_of_its_own(
    app: Any, client: FlaskClient, fair: Fair, project: Project
) -> None:
    client.put(f"/api/v1/projects/{project.id}/favourite")
    stranger = app.test_client()
    assert stranger.get("/api/v1/me/favourites").json["items"] == []


def test_a_draft_cannot_be_favourited(client: FlaskClient, fair: Fair,
                                      make_project: Callable[..., Project]) -> None:
    draft = make_project(fair, publish=False)
    response = client.put(f"/api/v1/projects/{draft.id}/favourite")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert db.session.scalar(select(func.count()).select_from(Favourite)) == 0


def test_visits_through_a_share_link_count_for_the_sharer_and_the_project(
    app: Any, client: FlaskClient, fair: Fair, project: Project,
    make_user: Callable[..., User], token_for: Callable[[User], dict[str, str]],
) -> None:
    sharer = make_user(Role.buyer)
    made = client.post(f"/api/v1/projects/{project.id}/share", headers=token_for(sharer))
    assert made.status_code == 201
    code = made.json["code"]
    assert made.json["url"].endswith(f"/s/{code}")
    for _ in range(2):
        friend = app.test_client()
        response = friend.get(f"/s/{code}")
        assert response.status_code == 302
        assert response.headers["Location"].endswith(f"/projects/{project.id}")
    visits = events(kind="share_visit")
    assert [(event.sharer_id, event.project_id) for event in visits] == [
        (sharer.id, project.id)] * 2
    assert db.session.scalars(select(Share)).one().visits == 2
    assert client.get("/s/nosuchcode").status_code == 404


def test_the_portrait_is_for_organisers_and_counts_what_was_recorded(
    client: FlaskClient, fair: Fair, project: Project, organiser: User,
    make_user: Callable[..., User], token_for: Callable[[User], dict[str, str]],
) -> None:
    client.get("/catalogue?q=川剧")
    client.get(f"/projects/{project.id}")
    client.put(f"/api/v1/projects/{project.id}/favourite")
    url = f"/api/v1/fairs/{fair.id}/insights"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=token_for(make_user(Role.buyer))).status_code == 403
    figures = client.get(url, headers=token_for(organiser)).json
    assert figures["visits"]["total"] == 1
    assert figures["searches"]["top"] == [{"terms": "川剧", "searches": 1, "zero_results": 0}]
    assert figures["projects"]["most_viewed"] == [
        {"project_id": project.id, "title": project.title, "count": 1}]
    assert figures["projects"]["most_favourited"][0]["count"] == 1
    assert figures["funnel"]["by_category"] == [
        {"key": "performance", "view": 1, "favourite": 1, "intent": 0}]


def test_an_exhibitor_sees_cells_of_fewer_than_three_buyers_as_hidden(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    _, owner = make_exhibitor(fair)
    project = make_project(fair, user=owner)
    for number, province in enumerate(("CN-SC", "CN-SC", "CN-SC", "CN-CQ")):
        headers = token_for(make_user(Role.buyer, province=province))
        for _ in range(1 + number):  # the same buyer again adds views, not buyers
            client.get(f"/api/v1/projects/{project.id}", headers=headers)
        if number == 0:
            client.put(f"/api/v1/projects/{project.id}/favourite", headers=headers)
    own = client.get(f"/api/v1/fairs/{fair.id}/insights/own", headers=token_for(owner)).json
    assert own["by_project"] == [{"project_id": project.id, "title": project.title,
                                  "view": 10, "favourite": "<3", "intent": "<3"}]
    assert own["by_province"] == [
        {"key": "CN-CQ", "view": "<3", "favourite": "<3", "intent": "<3"},
        {"key": "CN-SC", "view": 6, "favourite": "<3", "intent": "<3"},
    ]
    page = client.get("/portal/insights", headers=token_for(owner)).get_data(as_text=True)
    assert "&lt;3" in page


def test_a_user_downloads_and_deletes_their_behaviour_data(
    client: FlaskClient, fair: Fair, project: Project, make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    buyer, other = make_user(Role.buyer), make_user(Role.buyer)
    headers, others = token_for(buyer), token_for(other)
    client.get(f"/api/v1/projects/{project.id}", headers=headers)
    client.put(f"/api/v1/projects/{project.id}/favourite", headers=headers)
    client.get(f"/api/v1/projects/{project.id}", headers=others)
    mine = client.get("/api/v1/me/behaviour", headers=headers).json
    assert [event["kind"] for event in mine["events"]] == ["sign_in", "view", "favourite"]
    assert {event["user_id"] for event in mine["events"]} == {buyer.id}
    assert mine["favourites"][0]["project_id"] == project.id
    assert client.get("/api/v1/me/behaviour").status_code == 401
    rolled_up = db.session.scalar(select(func.sum(Rollup.count)))
    assert client.delete("/api/v1/me/behaviour", headers=headers).status_code == 204
    assert events(user_id=buyer.id) == []
    assert len(events(user_id=other.id)) == 2  # sign-in and view: someone else's stay
    assert client.get("/api/v1/me/behaviour", headers=headers).json["events"] == []
    # The counts stay; they name nobody.
    assert db.session.scalar(select(func.sum(Rollup.count))) == rolled_up


def test_a_hall_visit_is_recorded_when_a_hall_is_joined(
    fair: Fair, organiser: User, live_client: Callable[..., Any]
) -> None:
    hall = hall_service.create_hall(fair, organiser=organiser, name="主会场", stream_url="")
    live = live_client()
    ack = live.emit("join_hall", {"hall_id": hall.id}, namespace="/live", callback=True)
    assert ack["ok"]
    live.emit("join_hall", {"hall_id": hall.id}, namespace="/live", callback=True)
    visits = events(kind="hall_visit")
    assert [(event.hall_id, event.fair_id) for event in visits] == [(hall.id, fair.id)]
    assert db.session.get(Hall, hall.id) is not None


def test_an_intent_carries_the_hall_and_the_showcase_on_air_and_counts_per_showcase(
    client: FlaskClient, fair: Fair, project: Project, organiser: User,
    make_user: Callable[..., User], token_for: Callable[[User], dict[str, str]],
) -> None:
    hall = hall_service.create_hall(fair, organiser=organiser, name="主会场", stream_url="")
    now = dt.datetime.now(dt.UTC)
    showcase = hall_service.schedule_showcase(
        hall, organiser=organiser, project_id=project.id,
        starts_at=now - dt.timedelta(minutes=10), ends_at=now + dt.timedelta(minutes=50))
    hall_service.put_on_air(hall, organiser=organiser, showcase_id=showcase.id)
    buyer = make_user(Role.buyer, province="CN-XZ")
    signed = client.post(f"/api/v1/projects/{project.id}/deals",
                         json={"amount": "12000.00", "hall_id": hall.id},
                         headers={**token_for(buyer), "Idempotency-Key": "from-the-hall"})
    assert signed.status_code == 201
    client.post(f"/api/v1/projects/{project.id}/deals",  # the same request again: one intent
                json={"amount": "12000.00", "hall_id": hall.id},
                headers={**token_for(buyer), "Idempotency-Key": "from-the-hall"})
    intent = events(kind="intent")
    assert [(event.hall_id, event.showcase_id, event.project_id, event.buyer_province,
             event.category) for event in intent] == [
        (hall.id, showcase.id, project.id, "CN-XZ", project.category)]
    figures = client.get(f"/api/v1/fairs/{fair.id}/insights", headers=token_for(organiser)).json
    assert figures["intents"]["by_showcase"] == [
        {"showcase_id": showcase.id, "hall_id": hall.id, "hall": "主会场",
         "project": project.title, "visits": 0, "intents": 1}]
    assert figures["projects"]["most_signed"][0]["count"] == 1
    assert figures["funnel"]["by_province"] == [
        {"key": "CN-XZ", "view": 0, "favourite": 0, "intent": 1}]
