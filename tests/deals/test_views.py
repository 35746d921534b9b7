"""Pages: my intents (buyers), intents received (exhibitors), all intents (organisers)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from deals.models import Intent, IntentStatus
from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from tests.pages import cookie_session

Sign = Callable[..., Intent]


def sign_in(client: FlaskClient, user: User) -> None:
    cookie_session(client, user)


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_a_buyer_sees_its_intents_and_withdraws_one(
    client: FlaskClient, project: Project, buyer: User, make_buyer: Callable[..., User],
    sign: Sign,
) -> None:
    kept = sign(project, buyer, 1_234_500, note="春季巡演")
    gone = sign(project, buyer, 99)
    sign(project, make_buyer(), 77_700)  # someone else's
    sign_in(client, buyer)
    page = client.get("/my/intents")
    assert page.status_code == 200
    assert "12,345.00" in page.text
    assert "春季巡演" in page.text
    assert "777.00" not in page.text
    assert page.text.count("/withdraw") == 2
    assert 'href="/api/v1/fairs/' in page.text  # the download buttons

    response = client.post(f"/my/intents/{gone.id}/withdraw",
                           data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/my/intents")
    assert db.session.get(Intent, gone.id).status is IntentStatus.withdrawn
    assert db.session.get(Intent, kept.id).status is IntentStatus.active
    after = client.get("/my/intents").text
    assert "川剧变脸专场演出" in after
    assert after.count("/withdraw") == 1


def test_withdrawing_from_the_page_needs_the_csrf_token(
    client: FlaskClient, project: Project, buyer: User, sign: Sign
) -> None:
    intent = sign(project, buyer, 99)
    sign_in(client, buyer)
    assert client.post(f"/my/intents/{intent.id}/withdraw").status_code == 400
    assert db.session.get(Intent, intent.id).is_active


def test_an_exhibitor_sees_the_intents_on_its_projects_with_the_buyers(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], make_buyer: Callable[..., User], sign: Sign,
) -> None:
    _, owner = make_exhibitor(fair)
    sign(make_project(fair, user=owner, title="蜀绣体验课"), make_buyer(province="CN-XZ"), 500)
    sign(make_project(fair, title="别家的项目"), make_buyer(), 600)
    sign_in(client, owner)
    page = client.get("/portal/intents").text
    assert "蜀绣体验课" in page
    assert "西藏自治区" in page
    assert "别家的项目" not in page
    assert "format=csv" in page
    assert "format=xlsx" in page
    assert "/withdraw" not in page


def test_an_organiser_sees_every_intent_and_the_downloads(
    client: FlaskClient, project: Project, buyer: User, organiser: User, sign: Sign
) -> None:
    sign(project, buyer, 3_856_830_000)
    sign_in(client, organiser)
    page = client.get("/organiser/intents").text
    assert "38,568,300.00" in page
    assert "3856.83" in page
    assert "format=xlsx" in page


@pytest.mark.parametrize(("path", "role", "heading", "empty"), [
    ("/portal/intents", Role.exhibitor, "收到的签约意向", "您的项目还没有收到签约意向。"),
    ("/organiser/intents", Role.organiser, "全部签约意向", "本届大会还没有签约意向。"),
])
def test_the_two_lists_of_the_fairs_intents_say_whose_they_are(
    client: FlaskClient, fair: Fair, make_user: Callable[..., User], path: str, role: Role,
    heading: str, empty: str,
) -> None:
    sign_in(client, make_user(role))
    page = client.get(path).text
    assert f"<title>{heading} · " in page
    assert f"<h1>{heading}</h1>" in page
    assert empty in page


@pytest.mark.parametrize(("path", "allowed"), [
    ("/my/intents", Role.buyer),
    ("/portal/intents", Role.exhibitor),
    ("/organiser/intents", Role.organiser),
])
def test_each_page_is_for_its_role(
    client: FlaskClient, fair: Fair, make_user: Callable[..., User], path: str, allowed: Role
) -> None:
    anonymous = client.get(path)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/sign-in?next=")
    for role in Role:
        sign_in(client, make_user(role))
        assert client.get(path).status_code == (200 if role is allowed else 403)


def test_the_navigation_links_each_role_to_its_intents(
    client: FlaskClient, fair: Fair, make_user: Callable[..., User]
) -> None:
    for role, path in ((Role.buyer, "/my/intents"), (Role.exhibitor, "/portal/intents"),
                       (Role.organiser, "/organiser/intents")):
        sign_in(client, make_user(role))
        assert f'href="{path}"' in client.get("/").text


def test_the_project_page_offers_buyers_the_intent_form(
    client: FlaskClient, project: Project, buyer: User
) -> None:
    sign_in(client, buyer)
    page = client.get(f"/projects/{project.id}").text
    assert 'class="intent-form"' in page
    assert f'action="/api/v1/projects/{project.id}/deals"' in page
    assert 'name="amount"' in page
    script = re.search(r'<script type="module" src="([^"]+/intent_form.js)"></script>', page)
    assert script is not None
    with client.get(script.group(1)) as module:
        assert module.status_code == 200
        assert "javascript" in module.content_type
        assert 'from "/static/js/api.js"' in module.text
    with client.get("/static/js/api.js") as api:
        assert '"Idempotency-Key"' in api.text
