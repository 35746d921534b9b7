"""The fair's own pages: home, the language switch, vendored scripts, error pages."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from exhibitors.models import Project
from fair.extensions import db
from fair.models import Fair
from livehalls.models import Hall

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


def test_a_missing_page_of_the_fair_renders_the_error_page(client: FlaskClient) -> None:
    page = client.get("/fairs/999/projects")
    assert page.status_code == 404
    assert "页面不存在" in page.text
    assert page.content_type.startswith("text/html")
