"""Phones (390×844) and desktops (1440×900), in Chinese and English: the hall as live-streaming
apps arrange it, every navigation tab and every province on screen; screenshots to look at."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.models import Fair
from fair.reference import PROVINCES
from livehalls import service as hall_service
from livehalls.models import Hall
from tests.serving import Server

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


@pytest.fixture
def hall(fair: Fair, organiser: User, make_project: Callable[..., Project],
         make_user: Callable[..., User]) -> Hall:
    hall = hall_service.create_hall(fair, organiser=organiser, name="一号直播厅")
    project = make_project(fair, title="川剧变脸专场演出")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    showcase = hall_service.schedule_showcase(
        hall, organiser=organiser, project_id=project.id, starts_at=start,
        ends_at=start + dt.timedelta(hours=1))
    hall_service.put_on_air(hall, organiser=organiser, showcase_id=showcase.id)
    for number in range(8):  # one line each: the chat refuses a fast talker
        hall_service.post_chat(hall, user=make_user(Role.buyer), text=f"第 {number} 条留言")
    return hall


@pytest.fixture
def sized(browser: Browser, live_server: Server) -> Iterator[Callable[..., BrowserContext]]:
    opened: list[BrowserContext] = []

    def open_context(viewport: dict[str, int], locale: str = "zh-CN") -> BrowserContext:
        context = browser.new_context(base_url=live_server.url, viewport=viewport,
                                      locale=locale, device_scale_factor=1,
                                      is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


def live_page(context: BrowserContext, path: str, lang: str) -> Page:
    page = context.new_page()
    page.goto(f"{path}?lang={lang}")
    return page


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_on_a_phone_the_chat_is_under_the_player_and_the_intent_form_one_tap_away(
    sized: Callable[..., BrowserContext], signed_in: Callable[[BrowserContext, User], None],
    hall: Hall, make_user: Callable[..., User], artifacts: Path, lang: str,
) -> None:
    context = sized(PHONE)
    signed_in(context, make_user(Role.buyer))
    page = live_page(context, f"/halls/{hall.id}", lang)
    expect(page.locator(".hall")).to_have_attribute("data-state", "live", timeout=15_000)
    player = page.locator(".player").bounding_box()
    chat = page.locator(".hall-chat").bounding_box()
    assert player is not None
    assert chat is not None
    assert player["width"] >= PHONE["width"] * 0.85  # the player spans the phone
    assert player["height"] >= player["width"] / 2
    assert chat["y"] >= player["y"] + player["height"]  # under the player
    assert chat["y"] < PHONE["height"]  # and on the first screen, not four screens below
    figures = [page.locator(".hall-figures > div").nth(i).bounding_box() for i in range(4)]
    assert all(box is not None for box in figures)
    # The four audience figures take one row above the player.
    assert len({round(box["y"]) for box in figures if box is not None}) == 1
    page.screenshot(path=str(artifacts / f"phone-hall-{lang}.png"))
    page.locator('.jump-to-intent a[href="#on-air"]').tap()
    amount = page.locator('input[name="amount"]')
    expect(amount).to_be_in_viewport()
    amount.fill("12,000")
    page.locator("form.intent-form button[type=submit]").tap()
    expect(page.locator(".intent-form-done")).to_be_visible()
    page.screenshot(path=str(artifacts / f"phone-hall-intent-{lang}.png"))


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(("role", "path"), [
    ("exhibitor", "/portal/intents"), ("organiser", "/organiser/intents"),
])
def test_on_a_phone_the_current_tab_is_on_screen(
    sized: Callable[..., BrowserContext], signed_in: Callable[[BrowserContext, User], None],
    fair: Fair, organiser: User, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    artifacts: Path, role: str, path: str, lang: str,
) -> None:
    user = organiser if role == "organiser" else make_exhibitor(fair)[1]
    context = sized(PHONE)
    signed_in(context, user)
    page = live_page(context, path, lang)
    current = page.locator('.site-nav a[aria-current="page"]')
    expect(current).to_be_visible()
    box = current.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"]
    for link in page.locator(".site-nav a").all():
        expect(link).to_be_in_viewport()
    page.screenshot(path=str(artifacts / f"phone-nav-{role}-{lang}.png"))


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_province_filter_shows_every_province(
    sized: Callable[..., BrowserContext], fair: Fair, make_project: Callable[..., Project],
    artifacts: Path, viewport: dict[str, int], lang: str,
) -> None:
    for province in PROVINCES:
        make_project(fair, title=f"{PROVINCES[province].zh}文化周", province=province)
    context = sized(viewport)
    page = live_page(context, "/catalogue", lang)
    provinces = page.locator(".facets details").nth(1)
    if provinces.get_attribute("open") is None:  # phones start with the filters folded
        provinces.locator("summary").click()
    links = provinces.locator("li a")
    expect(links).to_have_count(len(PROVINCES) + 1)
    tibet = links.filter(has_text="西藏" if lang == "zh" else "Tibet")
    tibet.scroll_into_view_if_needed()
    expect(tibet).to_be_in_viewport()
    box = provinces.locator("ul")
    assert box.evaluate("list => list.scrollHeight <= list.clientHeight")  # no inner scroll
    name = "phone" if viewport is PHONE else "desktop"
    page.screenshot(path=str(artifacts / f"{name}-catalogue-{lang}.png"), full_page=True)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_screenshots_of_home_and_hall(
    sized: Callable[..., BrowserContext], hall: Hall, artifacts: Path,
    viewport: dict[str, int], lang: str,
) -> None:
    context = sized(viewport)
    name = "phone" if viewport is PHONE else "desktop"
    page = live_page(context, "/", lang)
    expect(page.locator(".programme-item")).to_have_count(1)
    page.screenshot(path=str(artifacts / f"{name}-home-{lang}.png"), full_page=True)
    page = live_page(context, f"/halls/{hall.id}", lang)
    expect(page.locator(".hall")).to_have_attribute("data-state", "live", timeout=15_000)
    page.screenshot(path=str(artifacts / f"{name}-hall-{lang}.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0  # nothing wider than the screen
