"""Replays (回放) on the pages: listed on the project page and in the hall's schedule; the
exhibitor hides one and shows it again."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from exhibitors.models import Exhibitor
from fair.accounts.models import User
from fair.extensions import db
from fair.models import Fair
from livehalls import streaming
from livehalls.models import Hall, Showcase
from tests.pages import post_form, sign_in

SHA = "c" * 64


def exhibitor_of(showcase: Showcase) -> User:
    return db.session.scalars(db.select(User).where(
        User.organisation_id == showcase.project.exhibitor.organisation_id)).one()


def streamed(hall: Hall, make_showcase: Callable[..., Showcase]) -> Showcase:
    showcase = make_showcase(hall)
    streaming.attach_replay(showcase.id, sha256=SHA, size=1000, duration_ms=125_000)
    return showcase


def test_a_replay_shows_on_the_project_page_and_in_the_hall_schedule(
    client: FlaskClient, hall: Hall, make_showcase: Callable[..., Showcase]
) -> None:
    showcase = streamed(hall, make_showcase)
    page = client.get(f"/projects/{showcase.project_id}").text
    assert 'id="replays"' in page
    assert f'src="/replays/{showcase.id}.mp4"' in page
    assert "2 分 5 秒" in page
    assert "隐藏回放" not in page  # only its exhibitor may hide it
    schedule = client.get(f"/halls/{hall.id}").text
    assert f'href="/projects/{showcase.project_id}#replay-{showcase.id}"' in schedule


def test_a_project_without_replays_shows_no_replay_section(
    client: FlaskClient, hall: Hall, make_showcase: Callable[..., Showcase]
) -> None:
    showcase = make_showcase(hall)
    assert 'id="replays"' not in client.get(f"/projects/{showcase.project_id}").text
    assert "replay-link" not in client.get(f"/halls/{hall.id}").text


def test_the_exhibitor_hides_a_replay_and_shows_it_again(
    client: FlaskClient, hall: Hall, make_showcase: Callable[..., Showcase]
) -> None:
    showcase = streamed(hall, make_showcase)
    owner = exhibitor_of(showcase)
    sign_in(client, owner)
    page = f"/projects/{showcase.project_id}"
    hidden = post_form(client, f"/replays/{showcase.id}/visibility", {"hidden": "1"})
    assert hidden.status_code == 302
    assert hidden.headers["Location"].endswith(f"{page}#replays")
    own_view = client.get(page).text
    assert "已隐藏" in own_view
    assert "重新显示" in own_view
    other = client.application.test_client()
    assert 'id="replays"' not in other.get(page).text
    assert f"#replay-{showcase.id}" not in other.get(f"/halls/{hall.id}").text
    shown = post_form(client, f"/replays/{showcase.id}/visibility", {"hidden": "0"})
    assert shown.status_code == 302
    assert f'src="/replays/{showcase.id}.mp4"' in other.get(page).text


def test_another_exhibitor_cannot_hide_a_replay(
    client: FlaskClient, fair: Fair, hall: Hall, make_showcase: Callable[..., Showcase],
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    showcase = streamed(hall, make_showcase)
    _, rival = make_exhibitor(fair)
    sign_in(client, rival)
    refused = post_form(client, f"/replays/{showcase.id}/visibility", {"hidden": "1"})
    assert refused.status_code == 403
    db.session.expire_all()
    assert not showcase.replay_hidden
