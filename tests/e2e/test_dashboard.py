"""The organiser's dashboard in Chromium: live totals, ticker and charts, and recovery."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, expect

from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from fair.money import format_wan, parse_yuan
from livehalls.models import Hall
from tests.e2e.waiting import wait_for_charts
from tests.serving import Server, deals_sent

pytestmark = pytest.mark.e2e

Headers = Callable[[User], dict[str, str]]


class Fairground:
    """A fair with halls, projects and buyers, and a way to sign intents on the live server."""

    def __init__(self, server: Server, fair: Fair, make_project: Callable[..., Project],
                 make_user: Callable[..., User], token_for: Headers) -> None:
        self.server = server
        self.halls = [Hall(fair_id=fair.id, name=name)
                      for name in ("一号厅 · 非遗展演", "二号厅 · 文旅推介", "三号厅 · 数字文化")]
        db.session.add_all(self.halls)
        db.session.commit()
        self.projects = [
            make_project(fair, title="川剧变脸专场演出", category="performance"),
            make_project(fair, title="蜀绣非遗体验课", category="intangible-heritage",
                         province="CN-CQ"),
            make_project(fair, title="三星堆数字文物展", category="digital", province="CN-BJ"),
            make_project(fair, title="九寨沟研学旅游线路", category="tourism", province="CN-GD"),
            make_project(fair, title="熊猫文创礼盒", category="creative-goods", province="CN-SH"),
        ]
        self.buyers = {province: token_for(make_user(Role.buyer, province=province))
                       for province in ("CN-SC", "CN-CQ", "CN-BJ", "CN-SH", "CN-GD", "CN-HN",
                                        "CN-XZ")}
        self.total_fen = 0
        self.count = 0

    def sign(self, project: int, province: str, amount: str, hall: int | None = None
             ) -> dict[str, Any]:
        """Sign through the API; the intent as the server answered."""
        body: dict[str, object] = {"amount": amount}
        if hall is not None:
            body["hall_id"] = self.halls[hall].id
        response = requests.post(
            f"{self.server.url}/api/v1/projects/{self.projects[project].id}/deals", json=body,
            headers={**self.buyers[province], "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
        assert response.status_code == 201, response.text
        self.total_fen += parse_yuan(amount)
        self.count += 1
        intent: dict[str, Any] = response.json()
        return intent

    @property
    def total_wan(self) -> str:
        return format_wan(self.total_fen)


@pytest.fixture
def fairground(live_server: Server, fair: Fair, make_project: Callable[..., Project],
               make_user: Callable[..., User], token_for: Headers) -> Fairground:
    return Fairground(live_server, fair, make_project, make_user, token_for)


def open_dashboard(context: BrowserContext, signed_in: Callable[[BrowserContext, User], None],
                   organiser: User, fair: Fair) -> Page:
    signed_in(context, organiser)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"/fairs/{fair.id}/dashboard")
    expect(page.locator("body")).to_have_attribute("data-state", "live")
    assert errors == []
    return page


def test_intents_appear_on_the_dashboard_and_leave_the_server_within_two_seconds(
    context: BrowserContext, signed_in: Callable[[BrowserContext, User], None],
    organiser: User, fair: Fair, fairground: Fairground, artifacts: Path,
) -> None:
    earlier = [(0, "CN-SC", "1280000.00", 0), (1, "CN-CQ", "356000.50", 0),
               (2, "CN-BJ", "2400000.00", 2), (3, "CN-GD", "880000.00", 1),
               (4, "CN-SH", "99000.00", None), (0, "CN-HN", "450000.00", 0),
               (3, "CN-XZ", "1200000.00", 1), (2, "CN-SH", "618000.00", 2)]
    for project, province, amount, hall in earlier:
        fairground.sign(project, province, amount, hall)
    page = open_dashboard(context, signed_in, organiser, fair)
    expect(page.get_by_test_id("total-wan")).to_have_text(fairground.total_wan)

    signed = [fairground.sign(1, "CN-XZ", "1234567.89", 1),
              fairground.sign(4, "CN-HN", "38000.00", 2)]
    expect(page.get_by_test_id("total-wan")).to_have_text(fairground.total_wan)
    expect(page.get_by_test_id("ticker").locator("li").first).to_contain_text("熊猫文创礼盒")
    # Within two seconds is the server's promise, judged by its own clock: when it sent each
    # intent (its DEBUG log) against when it recorded it. A busy browser may paint it later.
    sent_at = {deal_id: at for at, ids in deals_sent(fairground.server, fair.id)
               for deal_id in ids}
    for intent in signed:
        recorded = dt.datetime.fromisoformat(intent["created_at"]).timestamp()
        assert sent_at[intent["id"]] - recorded < 2, (intent, sent_at)

    expect(page.get_by_test_id("deal-count")).to_have_text(str(fairground.count))
    expect(page.get_by_test_id("project-count")).to_have_text("5")
    expect(page.get_by_test_id("buyer-count")).to_have_text("7")
    ticker = page.get_by_test_id("ticker")
    expect(ticker.locator("li").nth(1)).to_contain_text("蜀绣非遗体验课")
    expect(ticker.locator("li").nth(1)).to_contain_text("¥1,234,567.89")
    expect(ticker.locator("li").nth(1)).to_contain_text("西藏自治区")
    wait_for_charts(page)
    page.screenshot(path=artifacts / "dashboard.png")


def test_the_dashboard_recovers_the_current_totals_after_losing_its_connection(
    context: BrowserContext, signed_in: Callable[[BrowserContext, User], None],
    organiser: User, fair: Fair, fairground: Fairground,
) -> None:
    fairground.sign(0, "CN-SC", "100000.00", 0)
    page = open_dashboard(context, signed_in, organiser, fair)
    expect(page.get_by_test_id("total-wan")).to_have_text("10.00")

    context.set_offline(True)
    expect(page.locator("body")).to_have_attribute("data-state", "offline")
    # Signed while the screen is cut off: no message can reach it.
    fairground.sign(2, "CN-BJ", "2500000.00", 2)
    fairground.sign(3, "CN-GD", "49999.99", None)
    page.wait_for_timeout(500)
    expect(page.get_by_test_id("total-wan")).to_have_text("10.00")

    context.set_offline(False)
    expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=10_000)
    expect(page.get_by_test_id("total-wan")).to_have_text(fairground.total_wan)
    expect(page.get_by_test_id("deal-count")).to_have_text("3")

    fairground.sign(1, "CN-CQ", "1.00", 0)
    expect(page.get_by_test_id("deal-count")).to_have_text("4")
