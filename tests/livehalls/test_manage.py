"""Organisers run the halls: create, rename, reorder, switches; move and cancel showcases;
the organisers' pages and the exhibitor's showcases page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.errors import Conflict, Forbidden, InvalidInput
from fair.extensions import db
from fair.models import Fair
from livehalls import service, streaming
from livehalls.models import Hall, Showcase
from tests.conftest import BroadcastRecorder
from tests.livehalls.conftest import SLOT_START
from tests.pages import sign_in

Headers = Callable[[User], dict[str, str]]
HOUR = dt.timedelta(hours=1)


def test_halls_are_renamed_reordered_and_switched(fair: Fair, organiser: User,
                                                  make_hall: Callable[..., Hall]) -> None:
    first, second, third = (make_hall(fair, name=name) for name in ("一号", "二号", "三号"))
    assert [h.position for h in (first, second, third)] == [0, 1, 2]
    service.change_hall(third, organiser=organiser, position=0, name=" 主会场 ")
    assert [h.name for h in service.list_halls(fair)] == ["主会场", "一号", "二号"]
    service.change_hall(third, organiser=organiser, position=5)  # past the end: last
    assert [h.name for h in service.list_halls(fair)] == ["一号", "二号", "主会场"]
    service.change_hall(first, organiser=organiser, auto_on_air=False, grace_minutes=30)
    assert (first.auto_on_air, first.grace_minutes) == (False, 30)
    with pytest.raises(InvalidInput):
        service.change_hall(first, organiser=organiser, name="  ")


def test_only_organisers_change_halls(fair: Fair, hall: Hall,
                                      make_user: Callable[..., User]) -> None:
    with pytest.raises(Forbidden):
        service.change_hall(hall, organiser=make_user(Role.exhibitor), name="我的厅")
    assert hall.name == "一号直播厅"


def test_the_halls_api_changes_a_hall(client: FlaskClient, hall: Hall, organiser: User,
                                      token_for: Headers) -> None:
    answer = client.patch(f"/api/v1/halls/{hall.id}", headers=token_for(organiser),
                          json={"name": "主会场", "auto_on_air": False, "grace_minutes": 5})
    assert answer.status_code == 200, answer.json
    assert (answer.json["name"], answer.json["auto_on_air"], answer.json["grace_minutes"]) == (
        "主会场", False, 5)
    refused = client.patch(f"/api/v1/halls/{hall.id}", headers=token_for(organiser),
                           json={"grace_minutes": -1})
    assert refused.status_code == 422
    assert refused.json["error"]["fields"]


def test_a_showcase_moves_to_a_free_slot_or_another_hall(
    fair: Fair, hall: Hall, organiser: User, make_hall: Callable[..., Hall],
    make_showcase: Callable[..., Showcase],
) -> None:
    first = make_showcase(hall)
    second = make_showcase(hall, hour=2)
    with pytest.raises(Conflict) as refused:
        service.move_showcase(second, organiser=organiser, starts_at=SLOT_START + HOUR / 2,
                              ends_at=SLOT_START + 2 * HOUR)
    assert refused.value.code == "slot_taken"
    db.session.expire_all()
    assert second.starts_at.replace(tzinfo=dt.UTC) == SLOT_START + 2 * HOUR
    # Its own slot does not count against it; touching the first is fine.
    service.move_showcase(second, organiser=organiser, starts_at=SLOT_START + HOUR,
                          ends_at=SLOT_START + 2 * HOUR)
    other = make_hall(fair, name="二号直播厅")
    service.move_showcase(first, organiser=organiser, starts_at=SLOT_START,
                          ends_at=SLOT_START + HOUR, hall_id=other.id)
    assert [s.id for s in service.list_showcases(other)] == [first.id]


def test_a_showcase_on_air_stays_in_its_hall_and_on_the_schedule(
    fair: Fair, hall: Hall, organiser: User, make_hall: Callable[..., Hall],
    make_showcase: Callable[..., Showcase], broadcasts: BroadcastRecorder,
) -> None:
    showcase = make_showcase(hall)
    service.put_on_air(hall, organiser=organiser, showcase_id=showcase.id)
    other = make_hall(fair, name="二号直播厅")
    with pytest.raises(Conflict):
        service.move_showcase(showcase, organiser=organiser, starts_at=SLOT_START,
                              ends_at=SLOT_START + HOUR, hall_id=other.id)
    with pytest.raises(Conflict):
        service.cancel_showcase(showcase, organiser=organiser)
    service.put_on_air(hall, organiser=organiser, showcase_id=None)
    service.cancel_showcase(showcase, organiser=organiser)
    assert service.list_showcases(hall) == []


def test_moving_and_cancelling_over_the_api(
    client: FlaskClient, hall: Hall, organiser: User, token_for: Headers,
    make_showcase: Callable[..., Showcase], make_user: Callable[..., User],
) -> None:
    showcase = make_showcase(hall)
    url = f"/api/v1/showcases/{showcase.id}"
    slot = {"starts_at": "2026-12-01T14:00:00+08:00", "ends_at": "2026-12-01T15:00:00+08:00"}
    assert client.patch(url, headers=token_for(make_user(Role.buyer)), json=slot
                        ).status_code == 403
    moved = client.patch(url, headers=token_for(organiser), json=slot)
    assert moved.status_code == 200, moved.json
    assert moved.json["starts_at"] == "2026-12-01T06:00:00+00:00"
    backwards = client.patch(url, headers=token_for(organiser),
                             json={"starts_at": slot["ends_at"], "ends_at": slot["starts_at"]})
    assert backwards.status_code == 422
    assert client.delete(url, headers=token_for(organiser)).status_code == 204
    assert client.delete(url, headers=token_for(organiser)).status_code == 404


# --- pages ------------------------------------------------------------------------------------


def test_the_organiser_manages_halls_on_a_page(client: FlaskClient, fair: Fair, organiser: User,
                                               make_hall: Callable[..., Hall]) -> None:
    make_hall(fair, name="主会场")
    make_hall(fair, name="非遗展演厅")
    assert client.get("/organiser/halls").status_code == 302  # sign in first
    sign_in(client, organiser)
    page = client.get("/organiser/halls").text
    assert page.index('value="主会场"') < page.index('value="非遗展演厅"')
    assert "开始推流即上播" in page
    assert "manage.js" in page
    assert "<script>" not in page  # code lives in static files


def test_the_day_view_shows_that_days_showcases_and_the_refused_pushes(
    app: Flask, client: FlaskClient, hall: Hall, organiser: User,
    make_showcase: Callable[..., Showcase],
) -> None:
    today = make_showcase(hall)  # 10:00 Beijing on 2026-12-01
    tomorrow = make_showcase(hall, hour=24)
    details = streaming.push_details(today, user=organiser)
    name = details.stream_key.split("?")[0]
    streaming.publish_started(name=name, expires="1", signature="bad", addr="10.1.1.1",
                              client="1")
    sign_in(client, organiser)
    page = client.get(f"/organiser/halls/{hall.id}?day=2026-12-01").text
    assert f'data-showcase-id="{today.id}"' in page
    assert f'data-showcase-id="{tomorrow.id}"' not in page
    assert "10:00–11:00" in page
    assert "签名错误，或推流码已重新生成" in page  # the refusal, in words
    assert "10.1.1.1" in page
    assert "同一直播厅的节目时段不能重叠" in page
    next_day = client.get(f"/organiser/halls/{hall.id}?day=2026-12-02").text
    assert f'data-showcase-id="{tomorrow.id}"' in next_day


@pytest.mark.parametrize("role", [Role.buyer, Role.exhibitor])
def test_others_cannot_open_the_organisers_pages(
    client: FlaskClient, hall: Hall, make_user: Callable[..., User], role: Role
) -> None:
    sign_in(client, make_user(role))
    assert client.get("/organiser/halls").status_code == 403
    assert client.get(f"/organiser/halls/{hall.id}").status_code == 403


def test_the_exhibitor_sees_its_upcoming_showcases_with_push_details(
    client: FlaskClient, fair: Fair, hall: Hall, organiser: User,
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project],
) -> None:
    _, owner = make_exhibitor(fair)
    _, rival = make_exhibitor(fair)
    project = make_project(fair, user=owner, title="蜀绣体验课")
    now = dt.datetime.now(dt.UTC)
    service.schedule_showcase(hall, organiser=organiser, project_id=project.id,
                              starts_at=now + HOUR, ends_at=now + 2 * HOUR)
    sign_in(client, owner)
    page = client.get("/portal/showcases").text
    assert "蜀绣体验课" in page
    assert "一号直播厅" in page
    assert "推流信息" in page
    assert "我的直播" in client.get("/portal").text
    other = client.application.test_client()
    sign_in(other, rival)
    assert "蜀绣体验课" not in other.get("/portal/showcases").text
