"""Halls, the showcase schedule, on-air control and chat, through the service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import update

from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from fair.extensions import db
from fair.models import Fair
from livehalls import rooms, service
from livehalls.models import ChatMessage, Hall, Showcase
from tests.conftest import BroadcastRecorder
from tests.livehalls.conftest import SLOT_START

HOUR = dt.timedelta(hours=1)


def test_organiser_opens_halls(fair: Fair, organiser: User) -> None:
    hall = service.create_hall(fair, organiser=organiser, name=" 一号直播厅 ",
                               stream_url="https://live.example/hall1.m3u8")
    assert (hall.name, hall.stream_url, hall.on_air) == (
        "一号直播厅", "https://live.example/hall1.m3u8", None)
    service.create_hall(fair, organiser=organiser, name="二号直播厅")
    assert [h.name for h in service.list_halls(fair)] == ["一号直播厅", "二号直播厅"]


@pytest.mark.parametrize(("role", "error"), [(None, Unauthorized), (Role.buyer, Forbidden),
                                             (Role.exhibitor, Forbidden)])
def test_only_organisers_open_halls(fair: Fair, make_user: Callable[..., User],
                                    role: Role | None, error: type[Exception]) -> None:
    user = None if role is None else make_user(role)
    with pytest.raises(error):
        service.create_hall(fair, organiser=user, name="大厅")
    assert service.list_halls(fair) == []


def test_schedule_lists_showcases_in_time_order(hall: Hall, make_showcase: Callable[..., Showcase]
                                                ) -> None:
    later = make_showcase(hall, hour=3)
    earlier = make_showcase(hall, hour=1)
    assert service.list_showcases(hall) == [earlier, later]


@pytest.mark.parametrize(("start", "minutes"), [
    (SLOT_START, 60),                                    # the same slot
    (SLOT_START + dt.timedelta(minutes=30), 60),         # starts inside
    (SLOT_START - dt.timedelta(minutes=30), 60),         # ends inside
    (SLOT_START - HOUR, 180),                            # covers it
    (SLOT_START + dt.timedelta(minutes=10), 10),         # inside it
])
def test_overlapping_slots_in_one_hall_are_refused(
    hall: Hall, project: Project, organiser: User, make_showcase: Callable[..., Showcase],
    start: dt.datetime, minutes: int,
) -> None:
    make_showcase(hall)
    with pytest.raises(Conflict) as refused:
        service.schedule_showcase(hall, organiser=organiser, project_id=project.id,
                                  starts_at=start, ends_at=start + dt.timedelta(minutes=minutes))
    assert refused.value.code == "slot_taken"
    assert len(service.list_showcases(hall)) == 1


def test_touching_slots_and_other_halls_are_free(
    fair: Fair, hall: Hall, project: Project, organiser: User,
    make_hall: Callable[..., Hall], make_showcase: Callable[..., Showcase],
) -> None:
    make_showcase(hall)
    service.schedule_showcase(hall, organiser=organiser, project_id=project.id,
                              starts_at=SLOT_START + HOUR, ends_at=SLOT_START + 2 * HOUR)
    other = make_hall(fair, name="二号直播厅")
    service.schedule_showcase(other, organiser=organiser, project_id=project.id,
                              starts_at=SLOT_START, ends_at=SLOT_START + HOUR)
    assert len(service.list_showcases(hall)) == 2


def test_slots_given_in_beijing_time_are_compared_in_utc(
    hall: Hall, project: Project, organiser: User, make_showcase: Callable[..., Showcase]
) -> None:
    make_showcase(hall)  # 02:00-03:00 UTC
    beijing = dt.timezone(dt.timedelta(hours=8))
    with pytest.raises(Conflict):
        service.schedule_showcase(
            hall, organiser=organiser, project_id=project.id,
            starts_at=dt.datetime(2026, 12, 1, 10, 30, tzinfo=beijing),
            ends_at=dt.datetime(2026, 12, 1, 11, 30, tzinfo=beijing),
        )
    showcase = service.schedule_showcase(
        hall, organiser=organiser, project_id=project.id,
        starts_at=dt.datetime(2026, 12, 1, 11, 0, tzinfo=beijing),
        ends_at=dt.datetime(2026, 12, 1, 12, 0, tzinfo=beijing),
    )
    assert showcase.starts_at.replace(tzinfo=dt.UTC) == SLOT_START + HOUR


def test_a_showcase_needs_a_published_project_of_the_fair_and_a_real_slot(
    fair: Fair, hall: Hall, organiser: User, make_fair: Callable[..., Fair],
    make_project: Callable[..., Project], make_user: Callable[..., User],
) -> None:
    def schedule(project_id: int, *, minutes: int = 60, user: User = organiser) -> None:
        service.schedule_showcase(hall, organiser=user, project_id=project_id,
                                  starts_at=SLOT_START,
                                  ends_at=SLOT_START + dt.timedelta(minutes=minutes))

    with pytest.raises(Conflict):
        schedule(make_project(fair, publish=False).id)
    with pytest.raises(InvalidInput):
        schedule(make_project(make_fair(name="另一场采购大会")).id)
    with pytest.raises(InvalidInput):
        schedule(999_999)
    published = make_project(fair)
    with pytest.raises(InvalidInput):
        schedule(published.id, minutes=0)
    with pytest.raises(Forbidden):
        schedule(published.id, user=make_user(Role.buyer))
    assert service.list_showcases(hall) == []


def test_putting_a_showcase_on_air_tells_the_hall(
    hall: Hall, organiser: User, make_showcase: Callable[..., Showcase],
    broadcasts: BroadcastRecorder,
) -> None:
    showcase = make_showcase(hall)
    with broadcasts.expect(1) as sent:
        service.put_on_air(hall, organiser=organiser, showcase_id=showcase.id)
    assert hall.on_air == showcase
    assert sent[0].event == "on_air"
    assert sent[0].rooms == {rooms.hall_room(hall.id)}
    assert sent[0].payload["hall_id"] == hall.id
    assert sent[0].payload["showcase"]["id"] == showcase.id
    assert sent[0].payload["showcase"]["project"]["title"] == showcase.project.title
    assert sent[0].payload["showcase"]["project"]["price"] == "120000.00"

    with broadcasts.expect(1) as sent:
        service.put_on_air(hall, organiser=organiser, showcase_id=None)
    assert hall.on_air is None
    assert sent[0].payload == {"hall_id": hall.id, "showcase": None}


def test_a_refused_on_air_change_tells_nobody(
    fair: Fair, hall: Hall, organiser: User, make_hall: Callable[..., Hall],
    make_showcase: Callable[..., Showcase], make_user: Callable[..., User],
    broadcasts: BroadcastRecorder,
) -> None:
    elsewhere = make_showcase(make_hall(fair, name="二号直播厅"))
    mine = make_showcase(hall)
    with broadcasts.expect(0):
        with pytest.raises(InvalidInput):
            service.put_on_air(hall, organiser=organiser, showcase_id=elsewhere.id)
        with pytest.raises(Forbidden):
            service.put_on_air(hall, organiser=make_user(Role.buyer), showcase_id=mine.id)
    db.session.expire_all()
    assert hall.on_air is None


def test_chat_lines_are_posted_as_plain_text_and_broadcast(
    hall: Hall, buyer: User, broadcasts: BroadcastRecorder
) -> None:
    with broadcasts.expect(1) as sent:
        message = service.post_chat(hall, user=buyer,
                                    text="  <b>好</b>\n<script>alert(1)</script> ")
    assert message.text == "<b>好</b> <script>alert(1)</script>"
    assert sent[0].event == "chat"
    assert sent[0].rooms == {rooms.hall_room(hall.id)}
    assert sent[0].payload["text"] == message.text
    assert sent[0].payload["user"] == {"id": buyer.id, "name": buyer.name}
    assert service.recent_chat(hall) == [message]


@pytest.mark.parametrize(("text", "code"), [("", "invalid"), (" \n\t ", "invalid"),
                                            ("长" * 301, "too_long")])
def test_empty_or_long_chat_lines_are_refused(hall: Hall, buyer: User, text: str, code: str,
                                              broadcasts: BroadcastRecorder) -> None:
    with broadcasts.expect(0), pytest.raises(InvalidInput) as refused:
        service.post_chat(hall, user=buyer, text=text)
    assert refused.value.code == code
    assert service.recent_chat(hall) == []


def test_a_line_of_exactly_the_limit_is_accepted(hall: Hall, buyer: User) -> None:
    assert len(service.post_chat(hall, user=buyer, text="长" * 300).text) == 300


def test_anonymous_viewers_cannot_chat(hall: Hall) -> None:
    with pytest.raises(Unauthorized):
        service.post_chat(hall, user=None, text="你好")


def test_a_user_posting_too_fast_is_slowed_down(
    fair: Fair, hall: Hall, buyer: User, make_hall: Callable[..., Hall],
    make_user: Callable[..., User],
) -> None:
    other_hall = make_hall(fair, name="二号直播厅")
    for number in range(service.CHAT_BURST):
        service.post_chat(hall if number % 2 else other_hall, user=buyer, text=f"第{number}条")
    with pytest.raises(service.ChatTooFast) as refused:
        service.post_chat(hall, user=buyer, text="再来一条")
    assert refused.value.status == 429
    # Someone else is not slowed down by it.
    service.post_chat(hall, user=make_user(Role.buyer), text="我也来")
    # Once the period has passed the user may talk again.
    db.session.execute(update(ChatMessage).where(ChatMessage.user_id == buyer.id).values(
        created_at=ChatMessage.created_at - service.CHAT_PERIOD))
    db.session.commit()
    service.post_chat(hall, user=buyer, text="又可以说话了")


def test_organisers_hide_a_line_from_everyone_once(
    hall: Hall, buyer: User, organiser: User, broadcasts: BroadcastRecorder
) -> None:
    kept = service.post_chat(hall, user=buyer, text="欢迎")
    rude = service.post_chat(hall, user=buyer, text="广告")
    with broadcasts.expect(1) as sent:
        service.hide_chat(rude, organiser=organiser)
    assert sent[0].event == "chat_hidden"
    assert sent[0].payload == {"hall_id": hall.id, "id": rude.id}
    assert rude.is_hidden
    assert rude.hidden_by_id == organiser.id
    assert service.recent_chat(hall) == [kept]
    with broadcasts.expect(0):
        service.hide_chat(rude, organiser=organiser)


def test_only_organisers_hide_chat(hall: Hall, buyer: User) -> None:
    message = service.post_chat(hall, user=buyer, text="我的话")
    with pytest.raises(Forbidden):
        service.hide_chat(message, organiser=buyer)
    with pytest.raises(Unauthorized):
        service.hide_chat(message, organiser=None)
    assert not message.is_hidden


def test_recent_chat_is_the_last_fifty_oldest_first(
    hall: Hall, make_user: Callable[..., User]
) -> None:
    users = [make_user(Role.buyer) for _ in range(11)]
    posted = [service.post_chat(hall, user=users[number // 5], text=f"第{number}条")
              for number in range(55)]
    assert service.recent_chat(hall) == posted[-50:]


def test_unknown_halls_and_lines_are_not_found(app: Flask) -> None:
    with pytest.raises(NotFound):
        service.access_hall(999)
    with pytest.raises(NotFound):
        service.access_chat_message(999)
