"""Issue 14's follow-ups in Chromium: an organiser hides a chat line and undoes it, mutes a
buyer who is then told why their line is refused, and an Excel export shows its progress."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from sqlalchemy import select

from deals import service as deal_service
from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from livehalls import service
from livehalls.models import ChatSanction, Hall

pytestmark = pytest.mark.e2e


@pytest.fixture
def hall(fair: Fair, organiser: User) -> Hall:
    return service.create_hall(fair, organiser=organiser, name="一号直播厅")


def open_hall(browser: Browser, live_server: object, user: User, hall: Hall,
              signed_in: Callable[[BrowserContext, User], None]) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=live_server.url,  # type: ignore[attr-defined]
                                  viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    signed_in(context, user)
    page = context.new_page()
    page.goto(f"/halls/{hall.id}")
    expect(page.locator(".hall")).to_have_attribute("data-state", "live", timeout=15_000)
    return context, page


def test_an_organiser_hides_a_line_undoes_it_and_mutes_its_author(
    browser: Browser, live_server: object, hall: Hall, organiser: User,
    make_user: Callable[..., User], signed_in: Callable[[BrowserContext, User], None],
    artifacts: Path,
) -> None:
    buyer = make_user(Role.buyer)
    name = buyer.name
    service.post_chat(hall, user=buyer, text="第一条")
    service.post_chat(hall, user=buyer, text="第二条")
    service.post_chat(hall, user=buyer, text="第三条")
    viewer_context, viewer = open_hall(browser, live_server, buyer, hall, signed_in)
    director_context, director = open_hall(browser, live_server, organiser, hall, signed_in)
    director.on("dialog", lambda dialog: dialog.accept())
    lines = viewer.get_by_test_id("chat").locator("li .chat-text")
    expect(lines).to_have_text(["第一条", "第二条", "第三条"])

    second = director.get_by_test_id("chat").locator("li").nth(1)
    second.get_by_role("button", name=f"隐藏: {name} 第二条").click()
    expect(lines).to_have_text(["第一条", "第三条"], timeout=10_000)
    status = director.locator("#moderation-status")
    expect(status).to_contain_text("已隐藏一条消息。")
    status.get_by_role("button", name="撤销").click()
    expect(status).to_have_text("已撤销。")
    # Back in its place, for every viewer.
    expect(lines).to_have_text(["第一条", "第二条", "第三条"], timeout=10_000)

    director.get_by_test_id("chat").locator("li").first.get_by_role(
        "button", name=f"禁言: {name}").click()
    expect(status).to_contain_text(f"已禁言 {name}。")
    viewer.fill("#chat-text", "我还想说")
    viewer.press("#chat-text", "Enter")
    expect(viewer.locator("#chat-status")).to_contain_text(
        "你已被主办方禁言，暂时不能在本厅发言。", timeout=10_000)
    director.screenshot(path=artifacts / "hall-moderation.png", full_page=True)

    status.get_by_role("button", name="撤销").click()
    expect(status).to_have_text("已撤销。")
    db.session.expire_all()
    assert db.session.scalars(select(ChatSanction)).all() == []
    viewer.fill("#chat-text", "谢谢主办方")
    viewer.press("#chat-text", "Enter")
    expect(lines.last).to_have_text("谢谢主办方", timeout=10_000)
    viewer_context.close()
    director_context.close()


def test_the_excel_export_shows_its_progress_then_downloads(
    context: BrowserContext, fair: Fair, organiser: User, make_user: Callable[..., User],
    make_project: Callable[..., Project], signed_in: Callable[[BrowserContext, User], None],
    artifacts: Path,
) -> None:
    project = make_project(fair, title="川剧变脸专场演出")
    deal_service.record_intent(project.id, buyer=make_user(Role.buyer),
                               amount_fen=1_200_000, idempotency_key="export-1")
    signed_in(context, organiser)
    page = context.new_page()
    page.goto("/organiser/intents")
    # The server's answer is held until the page has shown that it is waiting for it.
    held: list[Route] = []
    page.route("**/deals?format=xlsx", lambda route: held.append(route))

    page.get_by_role("link", name="下载 Excel").click()
    box = page.locator("#download-progress")
    expect(box).to_be_visible()
    expect(box).to_contain_text("正在生成文件，请稍候……")
    expect(box.get_by_role("progressbar")).not_to_have_attribute("value", "1")
    page.screenshot(path=artifacts / "export-progress.png")
    with page.expect_download() as downloaded:
        held[0].continue_()
    assert downloaded.value.suggested_filename.endswith(".xlsx")
    expect(box).to_contain_text("文件已下载。")
