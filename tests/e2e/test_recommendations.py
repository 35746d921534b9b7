"""猜你喜欢 in Chromium: a buyer favourites two 非遗 projects in the catalogue, then finds 非遗
projects with their reasons in the strip on the home page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.models import Fair
from recommend import service

pytestmark = pytest.mark.e2e


def test_a_buyer_favourites_two_heritage_projects_and_is_shown_heritage_with_reasons(
    context: BrowserContext, fair: Fair, make_project: Callable[..., Project],
    make_user: Callable[..., User], signed_in: Callable[[BrowserContext, User], None],
    artifacts: Path,
) -> None:
    heritage = [make_project(fair, title=title, category="intangible-heritage", summary=summary)
                for title, summary in (("蜀绣非遗技艺体验课", "蜀绣传承人带来的非遗刺绣体验。"),
                                       ("川剧变脸非遗展演", "川剧变脸非遗绝活现场展示。"),
                                       ("青神竹编非遗工坊", "竹编非遗手工艺工坊。"),
                                       ("羌绣非遗传承展", "羌族刺绣非遗作品展。"))]
    for title, category in (("都江堰研学旅游线路", "tourism"), ("民族音乐会", "performance"),
                            ("数字文博互动展", "digital"), ("熊猫文创礼品", "creative-goods"),
                            ("社区合唱团培训", "training"), ("城市书房巡展", "exhibition")):
        make_project(fair, title=title, category=category, summary="")
    service.rebuild(fair.id)  # the model the server loads (its queue has no consumer here)
    buyer = make_user(Role.buyer, province="CN-CQ")
    signed_in(context, buyer)
    page = context.new_page()
    page.goto("/catalogue?category=intangible-heritage")
    for project in heritage[:2]:
        button = page.get_by_test_id(f"favourite-{project.id}")
        expect(button).to_be_enabled()
        button.click()
        expect(button).to_have_attribute("aria-pressed", "true")

    page.goto("/")
    strip = page.get_by_test_id("recommendations")
    expect(strip).to_be_visible()
    expect(strip.get_by_role("heading", name="猜你喜欢")).to_be_visible()
    cards = strip.locator(".rec-card")
    expect(cards.first).to_have_attribute("data-category", "intangible-heritage")
    for other in heritage[2:]:
        card = page.get_by_test_id(f"rec-{other.id}")
        expect(card).to_be_visible()
        expect(card).to_contain_text("您常看的类别：非遗")
        expect(card.locator("[data-reason='favourited']")).to_contain_text("因为您收藏了「")
    # The top of the strip is 非遗: the two not yet favourited first.
    top = [cards.nth(number).get_attribute("data-category") for number in range(2)]
    assert top == ["intangible-heritage", "intangible-heritage"]
    page.screenshot(path=artifacts / "recommendations-home.png", full_page=True)

    # Opened from the strip: the project's page, counted as a click.
    page.get_by_test_id(f"rec-{heritage[2].id}").get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("青神竹编非遗工坊")
