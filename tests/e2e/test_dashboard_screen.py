"""The big screen in Chromium, fed by a stand-in /live socket (tests/e2e/fake_live.py): the
layout with the largest numbers at four screen sizes, the stale indicator, the ticker after a
reload, deposits paid, bursts and reconnects.

The screenshots land in test-artifacts/dashboard-<width>x<height>.png for a person to look at.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.models import Fair
from fair.money import MAX_DEAL_FEN, format_wan, format_yuan
from fair.reference import CATEGORIES, PROVINCES
from tests.e2e.fake_live import FakeLive
from tests.e2e.waiting import wait_for_charts
from tests.serving import Server

pytestmark = pytest.mark.e2e

SignedIn = Callable[[BrowserContext, User], None]

#: 99,999,999.99 万元, the most the screen promises to show on one line (in yuan).
LARGEST_TOTAL = "999999999949.99"
LONG_FAIR_NAME = ("“成渝地•巴蜀情”2020年成渝地区文化和旅游公共服务及产品采购大会暨成都市第三届"
                  "文化和旅游公共服务超市活动")
LONG_TITLE = "国家级非物质文化遗产代表性项目川剧变脸与蜀绣技艺沉浸式驻场演出及研学体验季度套餐"
HALLS = [{"id": number, "name": f"{number}号直播厅 · 非物质文化遗产与数字文旅融合展演专场"}
         for number in range(1, 7)]


def entry(amount: str, deal_count: int = 999) -> dict[str, Any]:
    return {"amount": amount, "deal_count": deal_count}


def largest_totals(fair_id: int, seq: int = 9_999_999) -> dict[str, Any]:
    """A totals object at the screen's limits: every province, category and hall, huge."""
    def amounts(count: int) -> list[str]:
        return [f"{999_999_999_949 - 3_000_000_000 * index}.99" for index in range(count)]

    return {
        "seq": seq, "fair_id": fair_id, "amount": LARGEST_TOTAL, "deal_count": 9_999_999,
        "project_count": 999_999, "buyer_count": 999_999,
        "secured_amount": LARGEST_TOTAL, "secured_count": 9_999_999,
        "visits": 99_999_999,
        "by_buyer_province": {code: entry(amount)
                              for code, amount in zip(PROVINCES, amounts(34), strict=True)},
        "by_exhibitor_province": {code: entry(amount)
                                  for code, amount in zip(PROVINCES, amounts(34), strict=True)},
        "by_category": {slug: entry(amount)
                        for slug, amount in zip(CATEGORIES, amounts(8), strict=True)},
        "by_hall": {str(hall["id"]): entry(amount)
                    for hall, amount in zip(HALLS, amounts(len(HALLS)), strict=True)},
        "by_exhibitor": {},
    }


def empty_totals(fair_id: int, seq: int = 0) -> dict[str, Any]:
    return {"seq": seq, "fair_id": fair_id, "amount": "0.00", "deal_count": 0,
            "project_count": 0, "buyer_count": 0, "secured_amount": "0.00", "secured_count": 0,
            "visits": 0, "by_buyer_province": {}, "by_exhibitor_province": {}, "by_category": {},
            "by_hall": {}, "by_exhibitor": {}}


def deal(number: int, *, title: str = LONG_TITLE, amount: str = format_yuan(MAX_DEAL_FEN),
         secured: bool = False, hall_id: int | None = 1) -> dict[str, Any]:
    return {"id": number, "hall_id": hall_id, "project": {"id": number, "title": title},
            "buyer_province": "CN-XJ", "amount": amount,
            "created_at": "2026-12-01T02:00:00+00:00", "secured": secured}


def join_ack(totals: dict[str, Any], deals: list[dict[str, Any]]) -> dict[str, Any]:
    figures = {"viewers": 9_999_999, "visits": 99_999_999, "peak_viewers": 9_999_999}
    return {"ok": True, "totals": totals, "halls": HALLS, "deals": deals,
            "viewers": [{"hall_id": hall["id"], "fair_id": totals["fair_id"], **figures,
                         "fair": figures} for hall in HALLS]}


class Screen:
    """An open dashboard on a stand-in socket, and every console error it logged."""

    def __init__(self, page: Page, live: FakeLive, errors: list[str]) -> None:
        self.page, self.live, self.errors = page, live, errors

    @property
    def state(self) -> str | None:
        return self.page.get_by_test_id("live-state").get_attribute("data-state")

    def expect_state(self, state: str, timeout: float = 5000) -> None:
        expect(self.page.get_by_test_id("live-state")).to_have_attribute(
            "data-state", state, timeout=timeout)

    def record_states(self) -> None:
        """Keep every state the page shows from now on in window.statesSeen."""
        self.page.evaluate("""() => {
          const element = document.querySelector('[data-testid="live-state"]');
          window.statesSeen = [];
          new MutationObserver(() => window.statesSeen.push(element.dataset.state))
            .observe(element, {attributes: true, attributeFilter: ["data-state"]});
        }""")

    def states_seen(self) -> list[str]:
        seen: list[str] = self.page.evaluate("window.statesSeen")
        return seen


@pytest.fixture
def open_screen(browser: Browser, live_server: Server, signed_in: SignedIn, organiser: User,
                ) -> Iterator[Callable[..., Screen]]:
    contexts: list[BrowserContext] = []

    def open_(fair: Fair, ack: dict[str, Any], *, width: int = 1920, height: int = 1080,
              locale: str = "zh-CN") -> Screen:
        context = browser.new_context(base_url=live_server.url, locale=locale,
                                      viewport={"width": width, "height": height})
        contexts.append(context)
        signed_in(context, organiser)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text)
                if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        live = FakeLive(page, ack=ack)
        page.goto(f"/fairs/{fair.id}/dashboard")
        screen = Screen(page, live, errors)
        screen.expect_state("live")
        return screen

    yield open_
    for context in contexts:
        context.close()


# ---- layout ---------------------------------------------------------------------------------

#: What the page measures of itself: overflow, wrapped lines, figures out of their cards, and
#: each bar chart's labels against its bars (from what ECharts drew: zrender's text spans).
LAYOUT = """() => {
  const doc = document.documentElement;
  const oneLine = (element) => {
    const style = getComputedStyle(element);
    const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.25;
    return element.getClientRects().length === 1
      && element.getBoundingClientRect().height < line * 1.5;
  };
  const wrapped = [...document.querySelectorAll(
    "h1, .dash-title p, .kpi h2, .kpi-value, .kpi-unit, .kpi-note, .panel h2, .dash-live, "
    + "#dash-clock, .dash-audience dt, .dash-audience dd, .panel-note, .ticker li > *")]
    .filter((element) => element.getBoundingClientRect().width > 0 && !oneLine(element))
    .map((element) => element.className || element.tagName);
  // A label and its figure side by side, never one under the other.
  const apart = [...document.querySelectorAll(".dash-audience div, .kpi-line, .dash-live")]
    .filter((row) => {
      const tops = [...row.children].map((child) => child.getBoundingClientRect());
      return tops.some((rect) => rect.top >= tops[0].bottom || rect.bottom <= tops[0].top);
    }).map((row) => row.textContent);
  const outOfCard = [...document.querySelectorAll(".kpi")].filter((card) => {
    const box = card.getBoundingClientRect();
    return [...card.querySelectorAll(".kpi-value, .kpi-unit")].some((part) => {
      const rect = part.getBoundingClientRect();
      return rect.left < box.left || rect.right > box.right - 4;
    });
  }).map((card) => card.querySelector("h2").textContent);
  // Whole rows in the ticker, each part of a row inside the list.
  const list = document.getElementById("ticker").getBoundingClientRect();
  const clipped = [...document.querySelectorAll(".ticker li > *")].filter((part) => {
    const rect = part.getBoundingClientRect();
    return rect.left < list.right && rect.top < list.bottom  // a row shown, not wrapped away
      && (rect.left < list.left || rect.right > list.right + 0.5 || rect.bottom > list.bottom);
  }).map((part) => part.className || part.tagName);
  const charts = {};
  for (const id of ["chart-provinces", "chart-categories", "chart-halls"]) {
    const chart = echarts.getInstanceByDom(document.getElementById(id));
    const data = chart.getModel().getSeriesByIndex(0).getData();
    const box = (element) => {
      const rect = element.getBoundingRect().clone();
      rect.applyTransform(element.getComputedTransform());
      return rect;
    };
    const bars = [];
    for (let index = 0; index < data.count(); index++) {
      const bar = box(data.getItemGraphicEl(index));
      bars.push({top: bar.y, bottom: bar.y + bar.height, left: bar.x});
    }
    const left = Math.min(...bars.map((bar) => bar.left));
    const spans = chart.getZr().storage.getDisplayList(true)
      .filter((element) => element.type === "tspan").map((span) => {
        const rect = box(span);
        return {text: span.style.text, left: rect.x, right: rect.x + rect.width,
                middle: rect.y + rect.height / 2};
      });
    const byMiddle = (a, b) => a.middle - b.middle;
    const names = spans.filter((span) => span.right <= left + 1).sort(byMiddle);
    const values = spans.filter((span) => span.left >= left).sort(byMiddle);
    charts[id] = {
      width: chart.getWidth(), bars: bars.length, names, values,
      misaligned: bars.map((bar, index) => [bar, names[index], values[index]])
        .filter(([bar, name, value]) => !name || !value
          || Math.abs(name.middle - (bar.top + bar.bottom) / 2) > 2
          || Math.abs(value.middle - (bar.top + bar.bottom) / 2) > 2).length,
    };
  }
  return {overflowX: doc.scrollWidth - innerWidth, overflowY: doc.scrollHeight - innerHeight,
          wrapped, apart, outOfCard, clipped, charts};
}"""


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1366, 768), (3840, 2160),
                                               (390, 844)])
def test_the_layout_holds_with_the_largest_numbers(
    open_screen: Callable[..., Screen], make_fair: Callable[..., Fair], artifacts: Path,
    width: int, height: int,
) -> None:
    fair = make_fair(name=LONG_FAIR_NAME)
    deals = [deal(number, secured=number % 2 == 0, hall_id=HALLS[number % 6]["id"])
             for number in range(1, 41)]
    screen = open_screen(fair, join_ack(largest_totals(fair.id), deals),
                         width=width, height=height)
    page = screen.page
    expect(page.get_by_test_id("total-wan")).to_have_text("99999999.99")
    expect(page.get_by_test_id("secured-wan")).to_have_text("99999999.99")
    expect(page.get_by_test_id("secured-count")).to_have_text("9,999,999")
    expect(page.get_by_test_id("deal-count")).to_have_text("9,999,999")
    expect(page.get_by_test_id("ticker").locator("li")).to_have_count(30)
    expect(page.get_by_test_id("ticker").locator("li").first).to_contain_text("¥100,000,000.00")
    wait_for_charts(page)
    page.evaluate("""() => document.getAnimations()
      .filter((animation) => animation.effect.getTiming().iterations !== Infinity)
      .forEach((animation) => animation.finish())""")  # new rows fade in; the picture waits
    layout = page.evaluate(LAYOUT)
    page.screenshot(path=artifacts / f"dashboard-{width}x{height}.png", full_page=True)

    assert layout["overflowX"] <= 0, layout
    if width > height:  # a projector's screen: everything on it, nothing to scroll
        assert layout["overflowY"] <= 0, layout
    assert layout["wrapped"] == [], layout["wrapped"]
    assert layout["apart"] == [], layout["apart"]
    assert layout["outOfCard"] == [], layout["outOfCard"]
    assert layout["clipped"] == [], layout["clipped"]
    charts = layout["charts"]
    provinces = charts["chart-provinces"]
    assert provinces["bars"] >= 5
    assert charts["chart-categories"]["bars"] == len(CATEGORIES)
    assert charts["chart-halls"]["bars"] == len(HALLS)
    for chart in charts.values():
        assert chart["misaligned"] == 0, chart
        assert len(chart["names"]) == chart["bars"] == len(chart["values"])
        assert all(name["left"] >= 0 for name in chart["names"]), chart["names"]
        assert all(value["right"] <= chart["width"] for value in chart["values"]), chart
    # The biggest province first, its figure exact.
    assert provinces["values"][0]["text"] == format_wan(99_999_999_994_999)
    assert screen.errors == []


# ---- staleness, reconnects and the ticker -------------------------------------------------------


@pytest.fixture
def sign(live_server: Server, fair: Fair, make_project: Callable[..., Project],
         make_user: Callable[..., User], token_for: Callable[[User], dict[str, str]],
         ) -> Callable[[str], dict[str, Any]]:
    """Sign an intent on the live server through the API, as a buyer's client does."""
    project = make_project(fair, title="川剧变脸专场演出")
    buyer = token_for(make_user(Role.buyer, province="CN-XZ"))

    def sign_(amount: str) -> dict[str, Any]:
        response = requests.post(
            f"{live_server.url}/api/v1/projects/{project.id}/deals", json={"amount": amount},
            headers={**buyer, "Idempotency-Key": str(uuid.uuid4())}, timeout=10)
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    return sign_


def test_a_screen_behind_the_servers_seq_says_so_and_catches_up(
    open_screen: Callable[..., Screen], fair: Fair, sign: Callable[[str], dict[str, Any]],
) -> None:
    sign("1234567.89")
    sign("100.00")  # the server is at seq 2; the screen joined at seq 0 and heard nothing
    screen = open_screen(fair, join_ack(empty_totals(fair.id), []))
    page = screen.page
    held: list[Route] = []
    page.route(f"**/api/v1/fairs/{fair.id}/totals", lambda route: held.append(route))
    screen.record_states()

    screen.live.emit("seq", {"fair_id": fair.id, "seq": 2})
    page.wait_for_timeout(1000)
    assert screen.state == "live"  # news may be a window behind the heartbeat: not yet stale
    screen.expect_state("stale", timeout=3000)
    expect(page.locator("#dash-status-text")).to_have_text("数据滞后")
    expect(page.get_by_test_id("total-wan")).to_have_text("0.00")
    assert len(held) == 1  # it reads GET .../totals once it is stale

    held[0].fallback()
    screen.expect_state("live")
    expect(page.get_by_test_id("total-wan")).to_have_text(format_wan(123_466_789))
    expect(page.get_by_test_id("live-state")).to_have_attribute("data-seq", "2")
    assert screen.states_seen() == ["stale", "live"]
    assert screen.errors == []


def test_a_heartbeat_the_news_catches_up_with_leaves_the_screen_live(
    open_screen: Callable[..., Screen], fair: Fair,
) -> None:
    screen = open_screen(fair, join_ack(empty_totals(fair.id), []))
    requested: list[str] = []
    screen.page.on("request", lambda request: requested.append(request.url)
                   if "/totals" in request.url else None)
    screen.record_states()
    for seq in range(1, 4):
        screen.live.emit("seq", {"fair_id": fair.id, "seq": seq})
        screen.page.wait_for_timeout(800)  # the coalesced news follows within a window
        screen.live.emit("totals", {**empty_totals(fair.id, seq), "amount": f"{seq}0000.00"})
        expect(screen.page.get_by_test_id("total-wan")).to_have_text(f"{seq}.00")
    screen.live.emit("seq", {"fair_id": fair.id, "seq": 3})  # the page has it already
    screen.live.emit("seq", {"fair_id": fair.id + 1, "seq": 99})  # another fair's
    screen.page.wait_for_timeout(2500)
    assert screen.states_seen() == []
    assert requested == []


def test_the_ticker_is_filled_after_a_reload_and_marks_deposits_paid(
    open_screen: Callable[..., Screen], fair: Fair,
) -> None:
    totals = {**empty_totals(fair.id, 5), "amount": "300.00", "deal_count": 3,
              "secured_amount": "100.00", "secured_count": 1}
    recent = [deal(1, title="川剧变脸专场演出", amount="100.00", secured=True),
              deal(2, title="蜀绣非遗体验课", amount="100.00"),
              deal(3, title="三星堆数字文物展", amount="100.00", hall_id=None)]
    screen = open_screen(fair, join_ack(totals, recent))
    ticker = screen.page.get_by_test_id("ticker").locator("li")
    expect(ticker).to_have_count(3)
    expect(ticker.nth(0)).to_contain_text("三星堆数字文物展")  # newest on top
    expect(ticker.nth(2)).to_contain_text("川剧变脸专场演出")
    expect(ticker.nth(2)).to_contain_text("已付意向金")
    expect(ticker.nth(1)).not_to_contain_text("已付意向金")
    expect(screen.page.get_by_test_id("secured-wan")).to_have_text("0.01")
    expect(screen.page.get_by_test_id("secured-count")).to_have_text("1")

    # A deposit is paid on the second intent: the row is marked, the totals that follow move.
    screen.live.emit("secured", {"fair_id": fair.id, "deal_ids": [2, 999]})
    screen.live.emit("totals", {**totals, "seq": 6, "secured_amount": "200.00",
                                "secured_count": 2})
    expect(ticker.nth(1)).to_contain_text("已付意向金")
    expect(screen.page.get_by_test_id("secured-wan")).to_have_text("0.02")
    expect(screen.page.get_by_test_id("secured-count")).to_have_text("2")
    assert ticker.nth(1).locator(".mark").count() == 1
    assert screen.errors == []


def test_a_burst_is_drawn_once_a_frame_into_a_capped_ticker(
    open_screen: Callable[..., Screen], fair: Fair,
) -> None:
    screen = open_screen(fair, join_ack(empty_totals(fair.id), []))
    page = screen.page
    page.evaluate("""() => {
      window.frames_ = 0;
      const count = () => { window.frames_ += 1; requestAnimationFrame(count); };
      requestAnimationFrame(count);
      window.changes = 0;
      new MutationObserver((records) => { window.changes += records.length; })
        .observe(document.getElementById("kpi-amount"), {childList: true, characterData: true,
                                                         subtree: true});
    }""")
    total_fen = 0
    for message in range(200):  # 200 messages of 10 intents, and the totals after each
        ids = range(message * 10 + 1, message * 10 + 11)
        screen.live.emit("deals", {"fair_id": fair.id, "deals": [
            deal(number, title=f"项目 {number}", amount="1.00") for number in ids]})
        total_fen += 1_000
        screen.live.emit("totals", {**empty_totals(fair.id, message + 1),
                                    "amount": format_yuan(total_fen),
                                    "deal_count": 10 * (message + 1)})
    expect(page.get_by_test_id("deal-count")).to_have_text("2,000")
    expect(page.get_by_test_id("total-wan")).to_have_text(format_wan(total_fen))
    ticker = page.get_by_test_id("ticker").locator("li")
    expect(ticker).to_have_count(30)
    expect(ticker.first).to_contain_text("项目 2000")
    assert ticker.nth(29).get_attribute("data-deal-id") == "1971"
    frames, changes = page.evaluate("[window.frames_, window.changes]")
    assert changes <= frames  # at most one change of the total a frame
    assert changes < 200
    assert screen.errors == []


def test_after_a_lost_connection_the_screen_joins_again_and_reads_the_totals(
    open_screen: Callable[..., Screen], fair: Fair, sign: Callable[[str], dict[str, Any]],
) -> None:
    screen = open_screen(fair, join_ack(empty_totals(fair.id), []))
    read: list[str] = []
    screen.page.on("request", lambda request: read.append(request.url)
                   if request.url.endswith(f"/fairs/{fair.id}/totals") else None)
    sign("56000.00")  # while the screen hears nothing of it
    # The next join brings the intent and the totals of that moment.
    screen.live.ack = join_ack({**empty_totals(fair.id, 1), "amount": "56000.00",
                                "deal_count": 1}, [deal(7, title="蜀绣研学体验课",
                                                        amount="56000.00")])
    screen.live.drop()
    screen.expect_state("reconnecting")
    screen.expect_state("live", timeout=10_000)
    assert screen.live.joins == 2
    expect(screen.page.get_by_test_id("ticker").locator("li")).to_have_count(1)
    expect(screen.page.get_by_test_id("total-wan")).to_have_text("5.60")
    expect(screen.page.get_by_test_id("deal-count")).to_have_text("1")
    assert len(read) == 1
    assert screen.errors == []
