"""A hall page fed by a stand-in /live socket (tests/e2e/fake_live.py): the ticker after a
reload, deposits paid, totals by seq, a burst, and a page behind the server's seq."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, Route, expect

from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.models import Fair
from fair.money import format_wan, format_yuan
from livehalls import service
from livehalls.models import Hall
from livehalls.schemas import HallSchema
from tests.e2e.fake_live import FakeLive
from tests.serving import Server

pytestmark = pytest.mark.e2e


@pytest.fixture
def hall(fair: Fair, organiser: User) -> Hall:
    return service.create_hall(fair, organiser=organiser, name="一号直播厅")


def hall_totals(fair_id: int, seq: int, amount: str = "0.00", deal_count: int = 0
                ) -> dict[str, Any]:
    """The totals a hall room hears: the dashboard's without by_exhibitor."""
    return {"seq": seq, "fair_id": fair_id, "amount": amount, "deal_count": deal_count,
            "project_count": deal_count and 1, "buyer_count": deal_count and 1,
            "secured_amount": "0.00", "secured_count": 0, "visits": 0,
            "by_buyer_province": {}, "by_exhibitor_province": {}, "by_category": {},
            "by_hall": {}}


def deal(number: int, hall_id: int | None, *, secured: bool = False) -> dict[str, Any]:
    return {"id": number, "hall_id": hall_id, "project": {"id": 1, "title": f"项目 {number}"},
            "buyer_province": "CN-XZ", "amount": "100.00",
            "created_at": "2026-12-01T02:00:00+00:00", "secured": secured}


class HallPage:
    def __init__(self, page: Page, live: FakeLive, errors: list[str]) -> None:
        self.page, self.live, self.errors = page, live, errors

    def expect_state(self, state: str, timeout: float = 5000) -> None:
        expect(self.page.locator(".hall")).to_have_attribute("data-state", state,
                                                              timeout=timeout)


@pytest.fixture
def open_hall(context: BrowserContext, hall: Hall) -> Callable[..., HallPage]:
    def open_(totals: dict[str, Any], deals: list[dict[str, Any]]) -> HallPage:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text)
                if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        ack = {"ok": True, "hall": HallSchema().dump(service.view_hall(hall)), "totals": totals,
               "chat": [], "deals": deals}
        live = FakeLive(page, ack=ack)
        page.goto(f"/halls/{hall.id}")
        opened = HallPage(page, live, errors)
        opened.expect_state("live")
        return opened

    return open_


def test_the_hall_ticker_is_filled_after_a_reload_and_marks_deposits_paid(
    open_hall: Callable[..., HallPage], fair: Fair, hall: Hall,
) -> None:
    opened = open_hall(hall_totals(fair.id, 3, "300.00", 3),
                       [deal(1, hall.id, secured=True), deal(2, None), deal(3, hall.id)])
    ticker = opened.page.get_by_test_id("ticker").locator("li")
    expect(ticker).to_have_count(3)
    expect(ticker.nth(0)).to_contain_text("项目 3")
    expect(ticker.nth(0)).to_contain_text("本厅")
    expect(ticker.nth(2)).to_contain_text("已付意向金")
    expect(opened.page.locator("#ticker-empty")).to_be_hidden()
    expect(opened.page.get_by_test_id("totals-wan")).to_have_text("0.03")

    opened.live.emit("secured", {"fair_id": fair.id, "deal_ids": [2]})
    opened.live.emit("totals", hall_totals(fair.id, 2, "99999.00", 1))  # older: ignored
    opened.live.emit("deals", {"fair_id": fair.id, "deals": [deal(4, None)]})
    opened.live.emit("totals", hall_totals(fair.id, 4, "400.00", 4))
    expect(ticker).to_have_count(4)
    expect(ticker.nth(0)).to_contain_text("项目 4")
    expect(ticker.nth(2)).to_contain_text("已付意向金")
    expect(opened.page.get_by_test_id("totals-wan")).to_have_text("0.04")
    expect(opened.page.locator(".hall")).to_have_attribute("data-seq", "4")
    assert opened.errors == []


def test_a_burst_reaches_the_hall_ticker_capped_and_drawn_once_a_frame(
    open_hall: Callable[..., HallPage], fair: Fair, hall: Hall,
) -> None:
    opened = open_hall(hall_totals(fair.id, 0), [])
    opened.page.evaluate("""() => {
      window.frames_ = 0;
      const count = () => { window.frames_ += 1; requestAnimationFrame(count); };
      requestAnimationFrame(count);
      window.changes = 0;
      new MutationObserver((records) => { window.changes += records.length; })
        .observe(document.getElementById("totals-wan"), {childList: true, subtree: true,
                                                        characterData: true});
    }""")
    for message in range(100):
        opened.live.emit("deals", {"fair_id": fair.id, "deals": [
            deal(number, hall.id) for number in range(message * 10 + 1, message * 10 + 11)]})
        opened.live.emit("totals", hall_totals(fair.id, message + 1,
                                               format_yuan(10_000 * (message + 1)),
                                               10 * (message + 1)))
    expect(opened.page.get_by_test_id("totals-wan")).to_have_text(format_wan(1_000_000))
    ticker = opened.page.get_by_test_id("ticker").locator("li")
    expect(ticker).to_have_count(30)
    expect(ticker.first).to_contain_text("项目 1000")
    frames, changes = opened.page.evaluate("[window.frames_, window.changes]")
    assert changes <= frames
    assert changes < 100
    assert opened.errors == []


def test_a_hall_behind_the_servers_seq_catches_up(
    open_hall: Callable[..., HallPage], live_server: Server, fair: Fair,
    make_project: Callable[..., Project], make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    project = make_project(fair)
    response = requests.post(
        f"{live_server.url}/api/v1/projects/{project.id}/deals", json={"amount": "88888.00"},
        headers={**token_for(make_user(Role.buyer)), "Idempotency-Key": str(uuid.uuid4())},
        timeout=10)
    assert response.status_code == 201, response.text
    opened = open_hall(hall_totals(fair.id, 0), [])
    held: list[Route] = []
    opened.page.route(f"**/api/v1/fairs/{fair.id}/totals", lambda route: held.append(route))

    opened.live.emit("seq", {"fair_id": fair.id, "seq": 1})
    opened.expect_state("stale", timeout=4000)
    assert len(held) == 1
    held[0].fallback()
    opened.expect_state("live")
    expect(opened.page.get_by_test_id("totals-wan")).to_have_text("8.89")
    assert opened.errors == []
