"""Chat moderation in a hall: undo a hidden line, mute or ban a user, lift it (issue 14)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from flask_babel import refresh
from sqlalchemy import func, select

from fair.accounts.models import Role, User
from fair.errors import Forbidden, InvalidInput, Unauthorized
from fair.extensions import db
from fair.models import Fair
from livehalls import service
from livehalls.models import ChatSanction, Hall, SanctionKind
from tests.conftest import BroadcastRecorder

Headers = Callable[[User], dict[str, str]]


def test_hiding_a_line_is_undone_and_it_comes_back_in_its_place(
    hall: Hall, buyer: User, organiser: User, broadcasts: BroadcastRecorder,
) -> None:
    first = service.post_chat(hall, user=buyer, text="第一条")
    hidden = service.post_chat(hall, user=buyer, text="第二条")
    last = service.post_chat(hall, user=buyer, text="第三条")
    service.hide_chat(hidden, organiser=organiser)
    assert service.recent_chat(hall) == [first, last]

    with broadcasts.expect(1) as sent:
        service.show_chat(hidden, organiser=organiser)
    assert sent[0].event == "chat"
    assert (sent[0].payload["id"], sent[0].payload["text"]) == (hidden.id, "第二条")
    assert not hidden.is_hidden
    assert hidden.hidden_by_id is None
    assert service.recent_chat(hall) == [first, hidden, last]
    with broadcasts.expect(0):
        service.show_chat(hidden, organiser=organiser)


def test_only_organisers_undo_a_hidden_line(hall: Hall, buyer: User, organiser: User) -> None:
    message = service.post_chat(hall, user=buyer, text="我的话")
    service.hide_chat(message, organiser=organiser)
    with pytest.raises(Forbidden):
        service.show_chat(message, organiser=buyer)
    with pytest.raises(Unauthorized):
        service.show_chat(message, organiser=None)
    assert message.is_hidden


def test_a_muted_user_is_refused_with_a_clear_message_until_the_mute_is_lifted(
    fair: Fair, hall: Hall, buyer: User, organiser: User, make_hall: Callable[..., Hall],
    make_user: Callable[..., User],
) -> None:
    kept = service.post_chat(hall, user=buyer, text="之前说的话")
    service.sanction_chatter(hall, organiser=organiser, user_id=buyer.id, kind=SanctionKind.mute)

    with pytest.raises(Forbidden) as refused:
        service.post_chat(hall, user=buyer, text="还想说")
    assert refused.value.code == "muted"
    assert str(refused.value.to_dict()["message"]) == "你已被主办方禁言，暂时不能在本厅发言。"
    assert service.recent_chat(hall) == [kept]  # a mute hides nothing
    # Only this hall, only this user.
    service.post_chat(make_hall(fair, name="二号直播厅"), user=buyer, text="别的厅可以")
    service.post_chat(hall, user=make_user(Role.buyer), text="别人可以")

    service.lift_sanction(hall, organiser=organiser, user_id=buyer.id)
    service.post_chat(hall, user=buyer, text="又可以说话了")
    service.lift_sanction(hall, organiser=organiser, user_id=buyer.id)  # nothing to lift


def test_a_ban_hides_the_users_lines_and_refuses_new_ones(
    hall: Hall, buyer: User, organiser: User, make_user: Callable[..., User],
    broadcasts: BroadcastRecorder,
) -> None:
    other = service.post_chat(hall, user=make_user(Role.buyer), text="正常发言")
    rude = [service.post_chat(hall, user=buyer, text=f"广告{number}") for number in range(2)]
    service.sanction_chatter(hall, organiser=organiser, user_id=buyer.id, kind=SanctionKind.mute)

    with broadcasts.expect(2) as sent:
        sanction = service.sanction_chatter(hall, organiser=organiser, user_id=buyer.id,
                                            kind=SanctionKind.ban)
    assert sorted(message.payload["id"] for message in sent) == [line.id for line in rude]
    assert {message.event for message in sent} == {"chat_hidden"}
    assert sanction.kind is SanctionKind.ban  # it replaced the mute: one sanction a user
    assert db.session.scalar(select(func.count()).select_from(ChatSanction)) == 1
    assert service.recent_chat(hall) == [other]
    with pytest.raises(Forbidden) as refused:
        service.post_chat(hall, user=buyer, text="再发一条")
    assert refused.value.code == "banned"


@pytest.mark.parametrize("role", [Role.buyer, Role.exhibitor])
def test_only_organisers_mute_and_organisers_cannot_be_muted(
    hall: Hall, buyer: User, organiser: User, make_user: Callable[..., User], role: Role,
) -> None:
    with pytest.raises(Forbidden):
        service.sanction_chatter(hall, organiser=make_user(role), user_id=buyer.id,
                                 kind=SanctionKind.mute)
    with pytest.raises(InvalidInput):
        service.sanction_chatter(hall, organiser=organiser, user_id=make_user(Role.organiser).id,
                                 kind=SanctionKind.mute)
    with pytest.raises(InvalidInput):
        service.sanction_chatter(hall, organiser=organiser, user_id=99_999,
                                 kind=SanctionKind.ban)
    assert db.session.scalar(select(func.count()).select_from(ChatSanction)) == 0


def test_the_api_mutes_lists_and_lifts_and_undoes_a_hidden_line(
    client: FlaskClient, hall: Hall, buyer: User, organiser: User, token_for: Headers,
) -> None:
    sanctions = f"/api/v1/halls/{hall.id}/chat-sanctions"
    refused = client.post(sanctions, json={"user_id": buyer.id, "kind": "mute"},
                          headers=token_for(buyer))
    assert refused.status_code == 403
    bad = client.post(sanctions, json={"user_id": buyer.id, "kind": "silence"},
                      headers=token_for(organiser))
    assert bad.status_code == 422

    muted = client.post(sanctions, json={"user_id": buyer.id, "kind": "mute"},
                        headers=token_for(organiser))
    assert muted.status_code == 200
    assert (muted.json["kind"], muted.json["user"]["id"]) == ("mute", buyer.id)
    listed = client.get(sanctions, headers=token_for(organiser)).json
    assert [(entry["user"]["name"], entry["kind"]) for entry in listed] == [(buyer.name, "mute")]
    assert client.delete(f"{sanctions}/{buyer.id}",
                         headers=token_for(organiser)).status_code == 204
    assert client.get(sanctions, headers=token_for(organiser)).json == []

    message = service.post_chat(hall, user=buyer, text="说错了")
    client.post(f"/api/v1/chat/{message.id}/hide", headers=token_for(organiser))
    assert client.post(f"/api/v1/chat/{message.id}/show",
                       headers=token_for(buyer)).status_code == 403
    shown = client.post(f"/api/v1/chat/{message.id}/show", headers=token_for(organiser))
    assert shown.status_code == 200
    assert shown.json["hidden_at"] is None
    assert [line["id"] for line in client.get(f"/api/v1/halls/{hall.id}/chat").json] == [
        message.id]


def test_a_muted_user_hears_why_in_the_language_of_the_request(
    client: FlaskClient, hall: Hall, buyer: User, organiser: User, token_for: Headers,
) -> None:
    service.sanction_chatter(hall, organiser=organiser, user_id=buyer.id, kind=SanctionKind.mute)
    with pytest.raises(Forbidden) as refused:
        service.post_chat(hall, user=buyer, text="还想说")
    with client.application.test_request_context("/api/v1/x", headers={"Accept-Language": "en"}):
        refresh()  # the test's app context outlives requests, and Babel caches on it
        assert refused.value.to_dict()["message"] == (
            "The organisers have muted you: you cannot chat in this hall for now.")
        assert refused.value.to_dict()["code"] == "muted"
