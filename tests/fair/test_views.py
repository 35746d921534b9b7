"""The fair's own pages: home, the language switch, vendored scripts, error pages."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from livehalls.models import Hall
from tests.pages import post_form, sign_in

FIGURE = re.compile(r'figure-value">([\d,]+)</span><span class="figure-label">([^<]+)<')


def test_home_shows_the_current_fairs_figures_in_chinese(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project]
) -> None:
    make_project(fair, province="CN-SC")
    make_project(fair, province="CN-XZ")
    make_project(fair, province="CN-XZ", publish=False)
    db.session.add(Hall(fair_id=fair.id, name="主会场"))
    db.session.commit()

    page = client.get("/")

    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert fair.name in page.text
    figures = {label: value for value, label in FIGURE.findall(page.text)}
    assert figures == {"参展单位": "3", "展示项目": "2", "直播大厅": "1", "覆盖省份": "2"}


def test_home_switches_to_english_and_remembers_it(client: FlaskClient, fair: Fair) -> None:
    english = client.get("/?lang=en")
    assert '<html lang="en">' in english.text
    assert "Exhibitors" in english.text
    assert "Cultural supermarket" in english.text

    assert '<html lang="en">' in client.get("/").text
    assert '<html lang="zh-CN">' in client.get("/?lang=zh").text


def test_home_without_any_fair_still_renders(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "尚未创建采购大会" in page.text


def test_every_page_carries_a_csrf_meta_tag(client: FlaskClient, fair: Fair) -> None:
    assert '<meta name="csrf-token" content="' in client.get("/").text


@pytest.mark.parametrize("path", [
    "socket.io-client/dist/socket.io.min.js",
    "echarts/dist/echarts.min.js",
    "hls.js/dist/hls.min.js",
])
def test_vendor_serves_the_allowed_browser_libraries(client: FlaskClient, path: str) -> None:
    with client.get(f"/vendor/{path}") as response:
        assert response.status_code == 200
        assert "javascript" in response.content_type
        assert len(response.data) > 10_000


@pytest.mark.parametrize("path", [
    "socket.io-client/package.json",
    "echarts/dist/echarts.js",
    "../package.json",
    "..%2F..%2Fpyproject.toml",
    ".package-lock.json",
])
def test_vendor_refuses_anything_else(client: FlaskClient, path: str) -> None:
    with client.get(f"/vendor/{path}") as response:
        assert response.status_code == 404


@pytest.mark.parametrize("module", ["money.js", "api.js", "live.js", "frame.js", "ticker.js"])
def test_the_shared_page_modules_are_served_as_javascript(client: FlaskClient,
                                                          module: str) -> None:
    with client.get(f"/static/js/{module}") as response:
        assert response.status_code == 200
        assert response.content_type.startswith("text/javascript")  # modules need a JS type
        assert "export " in response.text


def test_a_missing_page_of_the_fair_renders_the_error_page(client: FlaskClient) -> None:
    page = client.get("/fairs/999/projects")
    assert page.status_code == 404
    assert "页面不存在" in page.text
    assert page.content_type.startswith("text/html")


def dashboard_config(page_text: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="dashboard-config">(.+?)</script>',
                      page_text, re.S)
    assert match is not None
    config: dict[str, object] = json.loads(match.group(1))
    return config


@pytest.mark.parametrize("path", ["/fairs/{id}/dashboard", "/dashboard"])
def test_an_organiser_opens_the_dashboard_shell(
    client: FlaskClient, organiser: User, fair: Fair, path: str
) -> None:
    sign_in(client, organiser)

    page = client.get(path.format(id=fair.id))

    assert page.status_code == 200
    assert "数据大屏" in page.text
    config = dashboard_config(page.text)
    assert config["fair_id"] == fair.id
    assert config["provinces"]["CN-XZ"] == "西藏自治区"  # type: ignore[index]
    assert config["categories"]["intangible-heritage"] == "非遗"  # type: ignore[index]
    for script in ("socket.io-client/dist/socket.io.min.js", "echarts/dist/echarts.min.js",
                   "dashboard.js"):
        assert script in page.text
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert all("src=" in script or 'type="application/json"' in script for script in scripts)
    for testid in ("live-state", "total-wan", "secured-wan", "secured-count", "deal-count",
                   "project-count", "buyer-count", "ticker"):
        assert f'data-testid="{testid}"' in page.text


def test_the_dashboard_speaks_english_too(
    client: FlaskClient, organiser: User, fair: Fair
) -> None:
    sign_in(client, organiser)

    page = client.get(f"/fairs/{fair.id}/dashboard?lang=en")

    assert "Live dashboard" in page.text
    assert "Of which deposit paid" in page.text
    config = dashboard_config(page.text)
    assert config["provinces"]["CN-XZ"] == "Tibet"  # type: ignore[index]
    assert config["strings"]["stale"] == "Catching up"  # type: ignore[index]
    assert config["strings"]["secured"] == "Deposit paid"  # type: ignore[index]


def test_the_dashboard_sends_an_anonymous_visitor_to_sign_in(
    client: FlaskClient, fair: Fair
) -> None:
    page = client.get(f"/fairs/{fair.id}/dashboard")

    assert page.status_code == 302
    assert page.location.startswith("/sign-in")


@pytest.mark.parametrize("role", [Role.buyer, Role.exhibitor])
def test_only_organisers_open_the_dashboard(
    client: FlaskClient, make_user: Callable[..., User], fair: Fair, role: Role
) -> None:
    sign_in(client, make_user(role))

    assert client.get(f"/fairs/{fair.id}/dashboard").status_code == 403


def test_the_dashboard_of_an_unknown_fair_is_not_found(
    client: FlaskClient, organiser: User
) -> None:
    sign_in(client, organiser)

    assert client.get("/fairs/999/dashboard").status_code == 404


def test_language_switch_keeps_the_page_and_its_query(client: FlaskClient, fair: Fair) -> None:
    page = client.get("/catalogue?q=川剧&category=performance").text
    assert 'href="/catalogue?q=%E5%B7%9D%E5%89%A7&amp;category=performance&amp;lang=en"' in page


def test_language_switch_on_an_error_answering_a_post_goes_home(
    client: FlaskClient, fair: Fair, make_user: Callable[..., User],
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    pending, _ = make_exhibitor(fair, approved=False)
    sign_in(client, make_user(Role.buyer))
    refused = post_form(client, f"/organiser/exhibitors/{pending.id}/approve")
    assert refused.status_code == 403
    assert 'href="/?lang=en"' in refused.text
