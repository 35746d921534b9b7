"""From application to catalogue in Chromium: an exhibitor registers, applies and is approved,
creates a project with an image and publishes it; a visitor finds it by a Chinese search."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.serving import Server

pytestmark = pytest.mark.e2e

ORGANISER = ("boss@fair.example", "organiser-secret")
EXHIBITOR = ("shuxiu@example.com", "exhibitor-secret")
TITLE = "蜀绣非遗体验课·熊猫纹样"
PHONE = {"width": 390, "height": 844}


def poster() -> bytes:
    """A PNG poster: red ground, a gold disc, a few embroidery-like stripes."""
    image = Image.new("RGB", (1200, 800), (150, 28, 20))
    draw = ImageDraw.Draw(image)
    draw.ellipse((420, 180, 780, 540), fill=(214, 170, 80))
    for offset in range(0, 1200, 60):
        draw.line((offset, 700, offset + 300, 620), fill=(240, 220, 170), width=6)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def open_fair(server: Server) -> int:
    """The organiser opens a fair through the API, as the fair's operators do."""
    token = requests.post(f"{server.url}/api/v1/auth/token", timeout=10,
                          json={"email": ORGANISER[0], "password": ORGANISER[1]}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    created = requests.post(f"{server.url}/api/v1/fairs", headers=headers, timeout=10, json={
        "name": "2026 文旅公共服务采购大会", "starts_at": "2026-12-01T09:00:00+08:00",
        "ends_at": "2026-12-04T18:00:00+08:00"})
    assert created.status_code == 201, created.text
    opened = requests.patch(f"{server.url}/api/v1/fairs/{created.json()['id']}",
                            headers=headers, json={"status": "open"}, timeout=10)
    assert opened.status_code == 200, opened.text
    fair_id: int = created.json()["id"]
    return fair_id


def new_page(browser: Browser, server: Server, **options: Any) -> tuple[BrowserContext, Page]:
    """A fresh browser profile (no cookies) on the server, in Chinese."""
    context = browser.new_context(base_url=server.url, locale="zh-CN", **options)
    return context, context.new_page()


def test_exhibitor_publishes_and_a_visitor_finds_it_by_a_chinese_search(
    browser: Browser, live_server: Server, fair_cli: Callable[..., str], artifacts: Path,
    tmp_path: Path,
) -> None:
    fair_cli("fair", "create-organiser", ORGANISER[0], "--password", ORGANISER[1])
    open_fair(live_server)

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=artifacts / f"catalogue-flow-{name}.png", full_page=True)

    # An exhibitor registers and applies.
    exhibitor_context, exhibitor = new_page(browser, live_server,
                                            viewport={"width": 1280, "height": 900})
    exhibitor.goto("/register")
    exhibitor.get_by_label("参展商").check()
    exhibitor.get_by_label("单位名称").fill("成都市蜀绣文化馆")
    exhibitor.get_by_label("所在省份").select_option("CN-SC")
    exhibitor.get_by_label("联系人").fill("王老师")
    exhibitor.get_by_label("邮箱").fill(EXHIBITOR[0])
    exhibitor.get_by_label("密码").fill(EXHIBITOR[1])
    shot(exhibitor, "1-register")
    exhibitor.get_by_role("button", name="注册").click()
    expect(exhibitor).to_have_url(f"{live_server.url}/portal")
    exhibitor.get_by_role("button", name="申请参展").click()
    expect(exhibitor.get_by_text("申请审核中")).to_be_visible()
    shot(exhibitor, "2-applied")

    # The organiser signs in and approves it on the approval page.
    organiser_context, organiser = new_page(browser, live_server,
                                            viewport={"width": 1280, "height": 900})
    organiser.goto("/sign-in")
    organiser.get_by_label("邮箱").fill(ORGANISER[0])
    organiser.get_by_label("密码").fill(ORGANISER[1])
    organiser.get_by_role("button", name="登录").click()
    expect(organiser).to_have_url(f"{live_server.url}/organiser/exhibitors")
    row = organiser.get_by_role("row").filter(has_text="成都市蜀绣文化馆")
    shot(organiser, "3-approvals")
    row.get_by_role("button", name="批准").click()
    expect(organiser.get_by_text("已批准 成都市蜀绣文化馆 参展。")).to_be_visible()
    organiser_context.close()

    # The exhibitor creates the project, uploads its image and publishes it.
    exhibitor.reload()
    exhibitor.get_by_role("link", name="新建项目").first.click()
    exhibitor.get_by_label("项目名称", exact=True).fill(TITLE)
    exhibitor.get_by_label("类别").select_option("intangible-heritage")
    exhibitor.get_by_label("参考价格（元）").fill("8800.00")
    exhibitor.get_by_label("简介", exact=True).fill(
        "国家级非遗蜀绣传承人带领体验平针、套针，绣一幅熊猫团扇。")
    exhibitor.get_by_label("详细介绍").fill(
        "## 课程安排\n\n- 蜀绣历史与针法\n- 熊猫团扇刺绣实践\n\n<script>alert('x')</script>")
    exhibitor.get_by_label("标签").fill("非遗，蜀绣，亲子")
    exhibitor.get_by_role("button", name="保存").click()
    expect(exhibitor.get_by_text("项目已保存为草稿")).to_be_visible()
    poster_file = tmp_path / "熊猫团扇.png"
    poster_file.write_bytes(poster())
    exhibitor.get_by_label("选择文件").set_input_files(poster_file)
    exhibitor.get_by_role("button", name="上传").click()
    expect(exhibitor.get_by_text("已上传 熊猫团扇.png")).to_be_visible()
    thumbnail = exhibitor.locator(".media-item img")
    expect(thumbnail).to_have_count(1)
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth") > 0
    exhibitor.get_by_role("button", name="发布到文化超市").click()
    expect(exhibitor.get_by_text("项目已发布到文化超市")).to_be_visible()
    shot(exhibitor, "4-published")
    exhibitor_context.close()

    # A visitor on a phone searches the catalogue in Chinese and opens the project.
    visitor_context, visitor = new_page(browser, live_server, viewport=PHONE,
                                        device_scale_factor=2, is_mobile=True, has_touch=True)
    visitor.goto("/")
    shot(visitor, "5-phone-home")
    visitor.goto("/catalogue")
    visitor.get_by_role("searchbox").fill("蜀绣")
    visitor.get_by_role("searchbox").press("Enter")
    card = visitor.locator(".card").filter(has_text=TITLE)
    expect(card).to_have_count(1)
    expect(visitor.get_by_text("共 1 个项目")).to_be_visible()
    shot(visitor, "6-phone-search")
    card.click()
    expect(visitor.get_by_role("heading", level=1)).to_contain_text(TITLE)
    image = visitor.locator("#gallery-image")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1200
    expect(visitor.get_by_text("¥8,800.00")).to_be_visible()
    expect(visitor.get_by_text("成都市蜀绣文化馆")).to_be_visible()
    assert "alert('x')" not in visitor.content()
    no_sideways_scroll = visitor.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert no_sideways_scroll
    shot(visitor, "7-phone-project")

    # The same project page in English on a desktop.
    visitor.set_viewport_size({"width": 1280, "height": 900})
    visitor.get_by_role("link", name="EN").click()
    expect(visitor.get_by_text("Intangible heritage").first).to_be_visible()
    shot(visitor, "8-desktop-project-en")
    visitor_context.close()
