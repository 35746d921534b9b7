"""The hall pages: the list of halls, and a hall for visitors, buyers and organisers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from flask.testing import FlaskClient

from fair.accounts.models import User
from fair.models import Fair
from livehalls import presence, service
from livehalls.models import Hall, Showcase
from tests.pages import cookie_session


def sign_in(client: FlaskClient, user: User) -> None:
    cookie_session(client, user)


def page_config(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="hall-config">(.*?)</script>', html,
                      re.S)
    assert found is not None
    config: dict[str, object] = json.loads(found.group(1))
    return config


def test_the_halls_page_lists_halls_with_what_is_on_air(
    client: FlaskClient, fair: Fair, hall: Hall, organiser: User, make_hall: Callable[..., Hall],
    make_showcase: Callable[..., Showcase], audience: presence.Presence,
) -> None:
    make_hall(fair, name="二号直播厅")
    showcase = make_showcase(hall)
    service.put_on_air(hall, organiser=organiser, showcase_id=showcase.id)
    audience.join("sid-1", hall_id=hall.id, fair_id=fair.id)

    html = client.get("/halls").get_data(as_text=True)

    assert f'href="/halls/{hall.id}"' in html
    assert "二号直播厅" in html
    assert showcase.project.title in html
    assert "在线 1 人" in html


def test_an_anonymous_visitor_watches_and_is_asked_to_sign_in(
    client: FlaskClient, hall: Hall, organiser: User, make_showcase: Callable[..., Showcase]
) -> None:
    showcase = make_showcase(hall)
    service.put_on_air(hall, organiser=organiser, showcase_id=showcase.id)

    response = client.get(f"/halls/{hall.id}")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert showcase.project.title in html
    assert "intent-form" not in html
    assert 'id="chat-form"' not in html
    assert "/sign-in" in html or "sign_in" in html or "登录" in html
    assert "take-off-air" not in html
    assert "/vendor/socket.io-client/dist/socket.io.min.js" in html
    assert "/vendor/hls.js/dist/hls.min.js" in html


def test_a_buyer_gets_the_intent_form_for_the_project_on_air_in_this_hall(
    client: FlaskClient, hall: Hall, buyer: User, organiser: User,
    make_showcase: Callable[..., Showcase],
) -> None:
    showcase = make_showcase(hall)
    service.put_on_air(hall, organiser=organiser, showcase_id=showcase.id)
    sign_in(client, buyer)

    html = client.get(f"/halls/{hall.id}").get_data(as_text=True)

    assert f'action="/api/v1/projects/{showcase.project_id}/deals"' in html
    assert f'name="hall_id" value="{hall.id}"' in html
    assert 'id="chat-form"' in html


def test_organisers_get_the_control_strip(
    client: FlaskClient, hall: Hall, organiser: User, make_showcase: Callable[..., Showcase]
) -> None:
    showcase = make_showcase(hall)
    sign_in(client, organiser)

    html = client.get(f"/halls/{hall.id}").get_data(as_text=True)

    assert f'class="btn btn-small btn-ghost put-on-air" data-showcase-id="{showcase.id}"' in html
    assert 'id="take-off-air"' in html
    assert page_config(html)["moderator"] is True


def test_chat_reaches_the_page_as_data_never_as_markup(
    client: FlaskClient, hall: Hall, buyer: User
) -> None:
    service.post_chat(hall, user=buyer, text="<script>alert(1)</script>")

    html = client.get(f"/halls/{hall.id}").get_data(as_text=True)

    assert "<script>alert(1)</script>" not in html
    config = page_config(html)
    assert config["chat"][0]["text"] == "<script>alert(1)</script>"  # type: ignore[index]


def test_an_unknown_hall_is_not_found(client: FlaskClient, fair: Fair) -> None:
    assert client.get("/halls/999").status_code == 404


def test_the_halls_page_without_a_fair(client: FlaskClient) -> None:
    assert "还没有开放的直播大厅" in client.get("/halls").get_data(as_text=True)


def test_the_hall_page_speaks_english_too(client: FlaskClient, hall: Hall, organiser: User,
                                          make_showcase: Callable[..., Showcase]) -> None:
    make_showcase(hall)
    sign_in(client, organiser)

    html = client.get(f"/halls/{hall.id}?lang=en").get_data(as_text=True)

    for text in ("Schedule", "Put on air", "Take off air", "Off air", "Intents at the fair"):
        assert text in html
    assert "节目单" not in html
