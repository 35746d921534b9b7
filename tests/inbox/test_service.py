"""inbox.service: told once per key, read, counted; the unread count reaches only the user's
own sockets, after commit, and is right again after a reconnect."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask_babel import force_locale
from flask_socketio.test_client import SocketIOTestClient

from fair.accounts.models import Role, User
from fair.extensions import db
from inbox import service
from inbox.models import Notification
from livehalls import broadcast, rooms
from tests.conftest import BroadcastRecorder

LiveClient = Callable[..., SocketIOTestClient]
Headers = Callable[[User], dict[str, str]]


def tell(user: User, key: str = "k-1") -> bool:
    told = service.notify(user.id, kind="need_closing", data={"need": "非遗课"},
                          link="/needs/1", dedupe_key=key)
    db.session.commit()
    return told


def test_a_notification_is_told_once_per_key(app: Flask, make_user: Callable[..., User]
                                             ) -> None:
    user = make_user(Role.buyer)
    assert tell(user)
    assert not tell(user)  # a retried request
    assert tell(user, "k-2")
    assert service.count_unread(user.id) == 2
    with app.test_request_context("/"):
        assert [service.text_of(n) for n in service.list_notifications(user)] == [
            "您的需求“非遗课”将在24小时内截止"] * 2
    with app.test_request_context("/"), force_locale("en"):
        assert service.text_of(service.list_notifications(user)[0]).startswith("Your need")


def test_marking_read_lowers_the_count(make_user: Callable[..., User]) -> None:
    user = make_user(Role.buyer)
    tell(user)
    tell(user, "k-2")
    first = service.list_notifications(user)[-1]
    assert service.mark_read(user, ids=[first.id]) == 1
    assert service.mark_read(user) == 0


def test_the_unread_count_goes_to_the_users_room_after_commit(
    make_user: Callable[..., User], broadcasts: BroadcastRecorder
) -> None:
    user = make_user(Role.buyer)
    with broadcasts.expect(1) as sent:
        tell(user)
    assert sent[0].event == "unread"
    assert sent[0].rooms == {rooms.user_room(user.id)}
    assert sent[0].payload == {"unread": 1}
    with broadcasts.expect(0):
        service.notify(user.id, kind="need_closing", data={}, link="", dedupe_key="gone")
        db.session.rollback()


def test_only_the_users_own_sockets_hear_its_count(
    make_user: Callable[..., User], live_client: LiveClient, token_for: Headers
) -> None:
    user, other = make_user(Role.buyer), make_user(Role.exhibitor)
    own = live_client({"token": token_for(user)["Authorization"].split()[1]})
    theirs = live_client({"token": token_for(other)["Authorization"].split()[1]})
    anonymous = live_client()
    tell(user)
    heard = [message for message in own.get_received(rooms.NAMESPACE)
             if message["name"] == "unread"]
    assert [message["args"][0] for message in heard] == [{"unread": 1}]
    assert not [m for m in theirs.get_received(rooms.NAMESPACE) if m["name"] == "unread"]
    assert not [m for m in anonymous.get_received(rooms.NAMESPACE) if m["name"] == "unread"]


def test_after_a_reconnect_the_count_is_read_again(
    client: object, make_user: Callable[..., User], token_for: Headers
) -> None:
    user = make_user(Role.buyer)
    tell(user)
    tell(user, "while-offline")
    answer = client.get("/api/v1/me/notifications/unread",  # type: ignore[attr-defined]
                        headers=token_for(user))
    assert answer.json == {"unread": 2}
    read = client.post("/api/v1/me/notifications/read", json={},  # type: ignore[attr-defined]
                       headers=token_for(user))
    assert read.json == {"unread": 0}


def told_elsewhere(user: User, key: str) -> None:
    """A notification committed by another process (the task consumer, the CLI): its rows
    only, no message to this process's sockets."""
    db.session.add(Notification(user_id=user.id, kind="need_closing", data={"need": "非遗课"},
                                link="/needs/1", dedupe_key=key))
    db.session.commit()


def test_a_notification_made_by_another_process_reaches_the_users_sockets(
    make_user: Callable[..., User], live_client: LiveClient, token_for: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    coalescer = broadcast.coalescer()
    monkeypatch.setattr(coalescer, "autofollow", False)  # the test polls, not a background task
    user, other = make_user(Role.buyer), make_user(Role.exhibitor)
    tell(user, "before")  # what the page showed: its client reads the count on connecting
    own = live_client({"token": token_for(user)["Authorization"].split()[1]})
    theirs = live_client({"token": token_for(other)["Authorization"].split()[1]})
    assert coalescer.follow_unread() is True
    assert unread_heard(own) == []  # nothing new, nothing sent
    assert unread_heard(theirs) == []

    told_elsewhere(user, "from-the-consumer")
    told_elsewhere(user, "from-the-cli")
    coalescer.follow_unread()
    assert unread_heard(own) == [{"unread": 3}]
    assert unread_heard(theirs) == []
    tell(user, "here")  # told after commit, as ever: the poll does not say it again
    coalescer.follow_unread()
    assert unread_heard(own) == [{"unread": 4}]

    own.disconnect(namespace=rooms.NAMESPACE)
    theirs.disconnect(namespace=rooms.NAMESPACE)
    assert coalescer.follow_unread() is False  # nobody left to follow: the poll stops


def unread_heard(live: SocketIOTestClient) -> list[dict[str, int]]:
    return [message["args"][0] for message in live.get_received(rooms.NAMESPACE)
            if message["name"] == "unread"]
