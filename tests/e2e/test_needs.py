"""供需对接 in Chromium: a buyer publishes a need, a matching exhibitor sees it in its portal and
responds, the buyer's unread count moves without a reload, and the buyer turns the response
into an intent that the organiser's dashboard shows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from deals.models import Intent
from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from needs.models import Need
from tests.serving import Server, consume

pytestmark = pytest.mark.e2e

SignIn = Callable[[BrowserContext, User], None]


@pytest.fixture
def consumer(app: Flask, live_server: Server, tmp_path: Path) -> Iterator[None]:
    """A task consumer beside the server, as deployed: matching runs on the queue."""
    database_file = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    with consume(database_file, log=tmp_path / "consumer.log"):
        yield


def page_for(browser: Browser, server: Server, signed_in: SignIn, user: User) -> Page:
    context = browser.new_context(base_url=server.url, viewport={"width": 1440, "height": 900},
                                  locale="zh-CN")
    signed_in(context, user)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def test_a_need_meets_a_response_that_becomes_an_intent_on_the_dashboard(
    browser: Browser, live_server: Server, signed_in: SignIn, fair: Fair, organiser: User,
    make_user: Callable[..., User],
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], artifacts: Path, consumer: None,
) -> None:
    buyer = make_user(Role.buyer, province="CN-CQ")  # verified, as make_user makes buyers
    _, owner = make_exhibitor(fair, province="CN-SC")
    make_project(fair, user=owner, title="蜀绣非遗手工体验课", category="intangible-heritage",
                 price_fen=6_000_000)

    buying = page_for(browser, live_server, signed_in, buyer)
    buying.goto("/needs/new")
    buying.locator('input[name="title"]').fill("非遗手工体验课进校园")
    buying.locator('select[name="category"]').select_option("intangible-heritage")
    buying.locator('select[name="province"]').select_option("CN-CQ")
    buying.locator('input[name="city"]').fill("渝中区")
    buying.locator('input[name="budget_min"]').fill("50000")
    buying.locator('input[name="budget_max"]').fill("80000")
    buying.locator('input[name="deadline"]').fill("2099-06-01T18:00")
    buying.locator('input[name="max_responses"]').fill("5")
    buying.locator('textarea[name="description"]').fill("为 **200** 名小学生开设手工课")
    buying.screenshot(path=str(artifacts / "needs-form.png"), full_page=True)
    buying.get_by_role("button", name="发布需求").click()
    expect(buying.locator("h1")).to_contain_text("非遗手工体验课进校园")
    need = db.session.scalars(select(Need)).one()
    unread = buying.get_by_test_id("unread")
    expect(unread).to_be_hidden()

    buying.goto("/needs?q=非遗")
    expect(buying.get_by_test_id("needs")).to_contain_text("非遗手工体验课进校园")
    buying.screenshot(path=str(artifacts / "needs-list.png"))

    selling = page_for(browser, live_server, signed_in, owner)
    matches = selling.get_by_test_id("matching-needs")
    for _ in range(40):  # the consumer matches the need once it is committed
        selling.goto("/portal")
        if "非遗手工体验课进校园" in matches.inner_text():
            break
        selling.wait_for_timeout(250)
    expect(matches).to_contain_text("非遗手工体验课进校园")
    selling.screenshot(path=str(artifacts / "needs-portal-matches.png"))
    matches.get_by_role("link", name="非遗手工体验课进校园").click()
    selling.locator('input[name="price"]').fill("62000.00")
    selling.locator('textarea[name="note"]').fill("含全部材料，可上门授课")
    selling.get_by_role("button", name="提交响应").click()
    expect(selling.locator(".flash-success")).to_contain_text("已提交响应")

    # The buyer's page was not reloaded: its count came over /live.
    expect(unread).to_have_text("1")
    expect(unread).to_be_visible()

    watching = page_for(browser, live_server, signed_in, organiser)
    watching.goto(f"/fairs/{fair.id}/dashboard")
    expect(watching.locator("body")).to_have_attribute("data-state", "live")

    buying.goto(f"/needs/{need.id}")
    responses = buying.get_by_test_id("responses")
    expect(responses).to_contain_text("蜀绣非遗手工体验课")
    expect(responses).to_contain_text("62,000.00")
    buying.screenshot(path=str(artifacts / "needs-need-page.png"))
    responses.get_by_role("button", name="签约意向").click()
    expect(buying.locator(".flash-success")).to_contain_text("已签约意向")
    expect(buying.get_by_test_id("need-intents")).to_contain_text("62,000.00")
    buying.screenshot(path=str(artifacts / "needs-signed.png"))

    expect(watching.get_by_test_id("ticker").locator("li").first).to_contain_text(
        "蜀绣非遗手工体验课")
    watching.screenshot(path=str(artifacts / "needs-dashboard.png"))
    db.session.expire_all()
    intent = db.session.scalars(select(Intent)).one()
    assert (intent.need_id, intent.amount_fen) == (need.id, 6_200_000)
