"""The audience in Chromium: a visitor favourites a project from its card, finds it under
我的收藏, and the organiser's portrait shows the view and the favourite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from exhibitors.models import Exhibitor, Project
from fair.accounts.models import User
from fair.models import Fair
from tests.serving import Server

pytestmark = pytest.mark.e2e


def test_a_visitor_favourites_a_project_and_the_organiser_sees_it_on_the_portrait(
    browser: Browser, live_server: Server, context: BrowserContext, fair: Fair,
    organiser: User, make_project: Callable[..., Project],
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    signed_in: Callable[[BrowserContext, User], None], artifacts: Path,
) -> None:
    _, owner = make_exhibitor(fair)
    project = make_project(fair, user=owner, title="川剧变脸·青年专场", category="performance")
    make_project(fair, title="熊猫基地研学一日游", category="tourism")
    visitor = browser.new_context(base_url=live_server.url, locale="zh-CN",
                                  viewport={"width": 1280, "height": 900})
    page = visitor.new_page()
    page.goto("/catalogue")
    notice = page.get_by_test_id("privacy-notice")
    expect(notice).to_be_visible()  # the first visit's notice
    notice.get_by_role("button").click()
    expect(notice).to_be_hidden()
    button = page.get_by_test_id(f"favourite-{project.id}")
    expect(button).to_be_enabled()
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=artifacts / "audience-catalogue.png")
    page.get_by_role("link", name="川剧变脸·青年专场").click()
    expect(page.get_by_test_id(f"favourite-{project.id}")).to_have_attribute(
        "aria-pressed", "true")  # the project page knows it too
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="我的收藏").click()
    favourites = page.get_by_test_id("favourites")
    expect(favourites).to_contain_text("川剧变脸·青年专场")
    expect(favourites).not_to_contain_text("熊猫基地研学一日游")
    page.goto("/catalogue")
    expect(page.get_by_test_id("privacy-notice")).to_be_hidden()  # once is enough
    visitor.close()

    signed_in(context, organiser)
    portrait = context.new_page()
    portrait.goto("/organiser/insights")
    viewed = portrait.get_by_test_id("most-viewed")
    for _ in range(20):  # views leave each process's buffer within a second
        if "川剧变脸·青年专场" in (viewed.text_content() or ""):
            break
        portrait.wait_for_timeout(250)
        portrait.reload()
        viewed = portrait.get_by_test_id("most-viewed")
    expect(viewed.locator("tbody tr").first).to_contain_text("川剧变脸·青年专场")
    expect(viewed.locator("tbody tr").first).to_contain_text("1")
    favourited = portrait.get_by_test_id("most-favourited")
    expect(favourited.locator("tbody tr")).to_have_count(1)
    expect(favourited.locator("tbody tr").first).to_contain_text("川剧变脸·青年专场")
    expect(portrait.get_by_test_id("insight-visits")).to_have_text("2")  # catalogue twice
    expect(portrait.locator("#most-viewed-chart canvas")).to_have_count(1)
    with portrait.expect_download() as download:
        portrait.locator('[data-csv="most-favourited-table"]').click()
    saved = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert saved.splitlines()[1] == "川剧变脸·青年专场,1"
    portrait.screenshot(path=artifacts / "audience-portrait.png", full_page=True)

    # The exhibitor sees its project's funnel, one visitor's doings hidden as "<3".
    exhibitor = browser.new_context(base_url=live_server.url, locale="zh-CN",
                                    viewport={"width": 1280, "height": 900})
    signed_in(exhibitor, owner)
    own = exhibitor.new_page()
    own.goto("/portal/insights")
    row = own.get_by_test_id("own-by-project").locator("tbody tr").first
    expect(row).to_contain_text("川剧变脸·青年专场")
    expect(row.locator("td").nth(1)).to_have_text("<3")
    expect(row.locator("td").nth(2)).to_have_text("<3")
    own.screenshot(path=artifacts / "audience-own-portrait.png", full_page=True)
    exhibitor.close()
