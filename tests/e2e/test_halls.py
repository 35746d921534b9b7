"""Two browsers in one live hall: chat, an intent signed on air, figures, all live."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.models import Fair
from livehalls import service
from livehalls.models import Hall

pytestmark = pytest.mark.e2e


@pytest.fixture
def hall_on_air(fair: Fair, organiser: User, make_project: Callable[..., Project]) -> Hall:
    hall = service.create_hall(fair, organiser=organiser, name="一号直播厅")
    start = dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC)
    for hour, title in enumerate(["川剧变脸专场演出", "蜀绣非遗体验课"]):
        project = make_project(fair, title=title)
        showcase = service.schedule_showcase(
            hall, organiser=organiser, project_id=project.id,
            starts_at=start + dt.timedelta(hours=hour),
            ends_at=start + dt.timedelta(hours=hour + 1))
        if hour == 0:
            service.put_on_air(hall, organiser=organiser, showcase_id=showcase.id)
    return hall


def open_hall(context: BrowserContext, hall: Hall) -> Page:
    page = context.new_page()
    page.goto(f"/halls/{hall.id}")
    expect(page.locator(".hall")).to_have_attribute("data-state", "live", timeout=15_000)
    return page


def test_chat_and_an_intent_signed_on_air_reach_both_pages(
    browser: object, live_server: object, hall_on_air: Hall, make_user: Callable[..., User],
    signed_in: Callable[[BrowserContext, User], None], artifacts: Path,
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    contexts = []
    pages = []
    for province in ("CN-SC", "CN-XZ"):
        context = browser.new_context(base_url=live_server.url,  # type: ignore[attr-defined]
                                      viewport={"width": 1440, "height": 1000}, locale="zh-CN")
        signed_in(context, make_user(Role.buyer, province=province))
        contexts.append(context)
        pages.append(open_hall(context, hall_on_air))
    first, second = pages

    # The figures count both pages (the server sends them about once a second).
    for page in pages:
        expect(page.get_by_test_id("viewers")).to_have_text("2", timeout=10_000)

    # A chat line typed in one page appears in the other, as text.
    line = "大家好 <b>这是文字</b>"
    first.fill("#chat-text", line)
    first.press("#chat-text", "Enter")
    heard = second.get_by_test_id("chat").locator("li .chat-text").last
    expect(heard).to_have_text(line, timeout=10_000)
    assert second.locator("#chat-lines b").count() == 0

    # An intent signed from the hall, on the project on air, appears on both tickers.
    card = second.get_by_test_id("on-air")
    expect(card).to_contain_text("川剧变脸专场演出")
    card.locator('input[name="amount"]').fill("88888.00")
    card.get_by_role("button", name="提交签约意向").click()
    expect(card.locator(".intent-form-status")).to_contain_text("88888.00", timeout=10_000)
    for page in pages:
        entry = page.get_by_test_id("ticker").locator("li").first
        expect(entry).to_contain_text("¥88,888.00", timeout=10_000)
        expect(entry).to_contain_text("川剧变脸专场演出")
        expect(page.get_by_test_id("totals-wan")).to_have_text("8.89")

    first.screenshot(path=artifacts / "halls-first.png", full_page=True)
    second.screenshot(path=artifacts / "halls-second.png", full_page=True)
    for context in contexts:
        context.close()


def test_an_organiser_puts_the_next_show_on_air_and_viewers_follow(
    context: BrowserContext, browser: object, live_server: object, hall_on_air: Hall,
    organiser: User, signed_in: Callable[[BrowserContext, User], None], artifacts: Path,
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    viewer = open_hall(context, hall_on_air)
    director_context = browser.new_context(base_url=live_server.url,  # type: ignore[attr-defined]
                                           viewport={"width": 1440, "height": 1000})
    signed_in(director_context, organiser)
    director = open_hall(director_context, hall_on_air)

    director.locator("#schedule li").nth(1).get_by_role("button", name="上播").click()
    expect(viewer.locator("#on-air-title")).to_have_text("蜀绣非遗体验课", timeout=10_000)
    expect(viewer.locator("#schedule li").nth(1)).to_have_attribute("aria-current", "true")

    director.locator("#take-off-air").click()
    expect(viewer.locator("#live-badge")).to_have_text("未开播", timeout=10_000)
    expect(viewer.get_by_test_id("on-air")).to_be_hidden()
    director.screenshot(path=artifacts / "halls-organiser.png", full_page=True)
    director_context.close()


def test_the_dashboard_shows_how_many_watch_the_halls(
    browser: object, live_server: object, hall_on_air: Hall, organiser: User,
    signed_in: Callable[[BrowserContext, User], None], artifacts: Path,
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    contexts = [browser.new_context(base_url=live_server.url)  # type: ignore[attr-defined]
                for _ in range(3)]
    # Two anonymous browsers from one address: the hall page gives each its own visitor cookie
    # before its socket connects, so they are two viewers.
    for context in contexts[:2]:
        open_hall(context, hall_on_air)
    signed_in(contexts[2], organiser)
    dashboard = contexts[2].new_page()
    dashboard.set_viewport_size({"width": 1920, "height": 1080})
    dashboard.goto(f"/fairs/{hall_on_air.fair_id}/dashboard")

    expect(dashboard.get_by_test_id("audience-viewers")).to_have_text("2", timeout=10_000)
    expect(dashboard.get_by_test_id("audience-visits")).to_have_text("2")
    expect(dashboard.locator("#audience-halls")).to_have_text("一号直播厅 2")
    contexts[0].close()  # a viewer leaves: the engine.io connection closes
    expect(dashboard.get_by_test_id("audience-viewers")).to_have_text("1", timeout=10_000)
    dashboard.screenshot(path=artifacts / "halls-dashboard.png")
    for context in contexts[1:]:
        context.close()
