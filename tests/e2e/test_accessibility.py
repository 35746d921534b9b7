"""axe-core (from npm) on every page, for every role, in both languages: no serious or critical
violation of WCAG 2.0/2.1/2.2 A and AA, in Debian's Chromium."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from deals import service as deal_service
from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.models import Fair
from livehalls import service as hall_service
from livehalls.models import Hall
from needs import service as need_service
from needs.models import Need
from tests.serving import ROOT, Server

pytestmark = pytest.mark.e2e

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
SERIOUS = ("serious", "critical")
#: Where the counts of each run are written, for the record (gitignored).
REPORT = ROOT / "test-artifacts" / "axe-report.json"


@dataclass(frozen=True)
class Stage:
    fair: Fair
    project: Project
    draft: Project
    hall: Hall
    need: Need
    users: dict[str, User]


@pytest.fixture
def stage(fair: Fair, organiser: User, make_user: Callable[..., User],
          make_exhibitor: Callable[..., tuple[Exhibitor, User]],
          make_project: Callable[..., Project]) -> Stage:
    """A fair with something on every page: projects, a hall on air with chat, intents."""
    _, exhibitor = make_exhibitor(fair)
    project = make_project(fair, user=exhibitor, title="川剧变脸专场演出", tags=("非遗", "川剧"))
    make_project(fair, title="蜀绣非遗体验课", category="training", province="CN-XZ")
    draft = make_project(fair, user=exhibitor, title="熊猫文创礼盒", publish=False)
    make_exhibitor(fair, approved=False)  # a pending application for the approvals page
    buyer = make_user(Role.buyer, province="CN-CQ")
    hall = hall_service.create_hall(fair, organiser=organiser, name="一号直播厅")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    showcase = hall_service.schedule_showcase(
        hall, organiser=organiser, project_id=project.id, starts_at=start,
        ends_at=start + dt.timedelta(hours=1))
    hall_service.put_on_air(hall, organiser=organiser, showcase_id=showcase.id)
    hall_service.post_chat(hall, user=buyer, text="请问可以驻场演出吗？")
    deal_service.record_intent(project.id, buyer=buyer, amount_fen=12_000_000,
                               idempotency_key="axe-1", hall_id=hall.id, note="春节")
    need = need_service.create_need(
        fair, buyer=buyer, title="非遗手工体验课进校园", category="performance",
        province="CN-CQ", budget_min_fen=5_000_000, budget_max_fen=8_000_000,
        deadline=start + dt.timedelta(days=5), max_responses=5, description="200名小学生",
        publish=True)
    need_service.respond_to_need(need, user=exhibitor, project_id=project.id,
                                 price_fen=6_000_000, note="可按需调整场次。")
    return Stage(fair=fair, project=project, draft=draft, hall=hall, need=need,
                 users={"buyer": buyer, "exhibitor": exhibitor, "organiser": organiser})


def pages_of(role: str, stage: Stage) -> list[str]:
    """Every page the role reaches, with its own pages beside the public ones."""
    public = ["/", "/catalogue", "/catalogue?q=川剧&category=performance",
              f"/projects/{stage.project.id}", "/halls", f"/halls/{stage.hall.id}",
              "/needs", "/needs?q=非遗&category=performance", f"/needs/{stage.need.id}",
              "/me/favourites", "/no-such-page"]
    return {
        "visitor": [*public, "/sign-in", "/register"],
        "buyer": [*public, "/my/intents", "/needs/new", "/inbox"],
        "exhibitor": [*public, "/portal", "/portal/intents", "/portal/projects/new",
                      f"/portal/projects/{stage.draft.id}", "/portal/insights",
                      "/portal/showcases", "/inbox"],
        "organiser": [*public, "/organiser/exhibitors", "/organiser/exhibitors?status=approved",
                      "/organiser/intents", "/organiser/buyers", "/organiser/halls",
                      f"/organiser/halls/{stage.hall.id}", "/organiser/insights", "/inbox",
                      "/dashboard"],
    }[role]


@pytest.fixture
def axe_context(browser: Browser, live_server: Server) -> Iterator[Callable[[str], BrowserContext]]:
    opened: list[BrowserContext] = []

    def open_context(locale: str) -> BrowserContext:
        # bypass_csp: axe is injected as a script the page's own policy does not list.
        context = browser.new_context(base_url=live_server.url, bypass_csp=True,
                                      viewport={"width": 1440, "height": 900}, locale=locale)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


def run_axe(page: Page) -> list[dict[str, object]]:
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']})).violations", TAGS)
    return [violation for violation in result if violation["impact"] in SERIOUS]


def describe(path: str, violations: list[dict[str, object]]) -> list[str]:
    return [f"{path}: {violation['id']} ({violation['impact']}) x{len(violation['nodes'])}: "
            + "; ".join(str(node["target"]) for node in violation["nodes"][:3])  # type: ignore[index,attr-defined]
            for violation in violations]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("role", ["visitor", "buyer", "exhibitor", "organiser"])
def test_no_serious_axe_violation_on_any_page(
    stage: Stage, axe_context: Callable[[str], BrowserContext],
    signed_in: Callable[[BrowserContext, User], None], role: str, lang: str,
) -> None:
    context = axe_context("zh-CN" if lang == "zh" else "en-US")
    if role != "visitor":
        signed_in(context, stage.users[role])
    page = context.new_page()
    page.goto(f"/?lang={lang}")  # the session remembers the language
    found: list[str] = []
    counts: dict[str, int] = {}
    for path in pages_of(role, stage):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        violations = run_axe(page)
        counts[path] = sum(len(violation["nodes"]) for violation in violations)  # type: ignore[arg-type]
        found += describe(path, violations)
    _record(f"{role}-{lang}", counts)
    assert found == [], "\n".join(found)


def _record(run: str, counts: dict[str, int]) -> None:
    REPORT.parent.mkdir(exist_ok=True)
    report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    report[run] = counts
    REPORT.write_text(json.dumps(report, ensure_ascii=False, indent=1))


def test_axe_is_installed_from_npm() -> None:
    assert AXE.exists(), "node_modules/axe-core is missing: `make install` runs npm ci"
    assert Path(ROOT / "package.json").read_text().count('"axe-core"') == 1


def test_hall_live_regions_are_sparing_and_live_updates_can_be_paused(
    stage: Stage, axe_context: Callable[[str], BrowserContext],
    signed_in: Callable[[BrowserContext, User], None],
) -> None:
    context = axe_context("zh-CN")
    buyer = stage.users["buyer"]
    signed_in(context, buyer)
    page = context.new_page()
    page.goto(f"/halls/{stage.hall.id}")
    expect(page.locator(".hall")).to_have_attribute("data-state", "live", timeout=15_000)
    expect(page.locator("#chat-log")).to_have_attribute("role", "log")
    assert page.locator("#chat-log #chat-lines").count() == 1
    # The counters change quietly: none of them sits in a live region.
    for figure in ("#totals-wan", "#figure-viewers", "#ticker"):
        assert page.eval_on_selector(figure, "e => e.closest('[aria-live]') === null")
    announcer = page.locator("#totals-announce")
    expect(announcer).to_contain_text("12.00")  # 120,000.00 yuan is 12.00 万元
    deal_service.record_intent(stage.project.id, buyer=buyer, amount_fen=100_000_000,
                               idempotency_key="axe-2")
    expect(page.locator("#totals-wan")).to_have_text("112.00", timeout=10_000)
    page.wait_for_timeout(1_500)
    expect(announcer).to_contain_text("12.00")  # not said again within 30 seconds

    pause = page.locator("#pause-live")
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "true")
    deal_service.record_intent(stage.project.id, buyer=buyer, amount_fen=200_000_000,
                               idempotency_key="axe-3")
    page.wait_for_timeout(2_000)
    expect(page.locator("#totals-wan")).to_have_text("112.00")  # paused: nothing moves
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#totals-wan")).to_have_text("312.00", timeout=5_000)


def test_hall_works_with_the_keyboard_alone_with_visible_focus(
    stage: Stage, axe_context: Callable[[str], BrowserContext],
    signed_in: Callable[[BrowserContext, User], None],
) -> None:
    context = axe_context("zh-CN")
    signed_in(context, stage.users["buyer"])
    page = context.new_page()
    page.goto(f"/halls/{stage.hall.id}")
    expect(page.locator(".hall")).to_have_attribute("data-state", "live", timeout=15_000)
    reached: set[str] = set()
    order: list[str] = []
    for _ in range(150):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => {
          const e = document.activeElement;
          const style = getComputedStyle(e);
          const box = e.getBoundingClientRect();
          return {name: e.id || e.name || e.className, tag: e.tagName,
                  text: (e.textContent || "").trim().slice(0, 20), outline: style.outlineStyle,
                  width: parseFloat(style.outlineWidth), top: box.top,
                  bottom: box.bottom, height: innerHeight};
        }""")
        if focused["tag"] == "BODY":
            continue  # the page itself, before the first element takes focus
        # Visible focus, on screen (scrolled into view, not under a sticky bar).
        assert focused["outline"] != "none", focused
        assert focused["width"] >= 2, focused
        assert focused["bottom"] > 0, focused
        assert focused["top"] < focused["height"], focused
        reached.add(str(focused["name"]))
        order.append(f"{focused['tag']}:{focused['name']}:{focused['text']}")
        if {"amount", "chat-text"} <= reached:
            break
    (REPORT.parent / "keyboard-order.txt").write_text("\n".join(order), encoding="utf-8")
    assert {"amount", "chat-text"} <= reached, order
    page.locator("#chat-text").focus()
    page.keyboard.type("键盘发言")
    page.keyboard.press("Enter")
    expect(page.locator("#chat-lines")).to_contain_text("键盘发言")
    expect(page.locator("#chat-lines time").last).to_have_text(re.compile(r"\d{2}:\d{2}"))
    page.locator('input[name="amount"]').focus()
    page.keyboard.type("12,000")
    page.keyboard.press("Enter")
    expect(page.locator(".intent-form-done")).to_be_visible()


def test_dashboard_charts_are_described_with_a_table_and_updates_can_be_paused(
    stage: Stage, axe_context: Callable[[str], BrowserContext],
    signed_in: Callable[[BrowserContext, User], None],
) -> None:
    context = axe_context("zh-CN")
    signed_in(context, stage.users["organiser"])
    page = context.new_page()
    page.goto("/dashboard")
    expect(page.locator('[data-testid="total-wan"]')).to_have_text("12.00", timeout=15_000)
    assert page.locator("main").count() == 1
    for key, name in (("provinces", "重庆"), ("categories", "演出"), ("halls", "一号直播厅")):
        chart = page.locator(f"#chart-{key}")
        expect(chart).to_have_attribute("aria-label", re.compile(rf"{name}\S* 12\.00 万元"))
        expect(page.locator(f"#table-{key} tbody tr").first).to_contain_text(name)
    page.locator("#table-provinces").locator("xpath=..").locator("summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#table-provinces")).to_be_visible()
    expect(page.locator("#totals-announce")).to_contain_text("12.00")

    page.locator("#pause-live").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#pause-live")).to_have_attribute("aria-pressed", "true")
    deal_service.record_intent(stage.project.id, buyer=stage.users["buyer"],
                               amount_fen=100_000_000, idempotency_key="axe-dash")
    page.wait_for_timeout(2_000)
    expect(page.locator('[data-testid="total-wan"]')).to_have_text("12.00")
    page.keyboard.press("Enter")
    expect(page.locator('[data-testid="total-wan"]')).to_have_text("112.00", timeout=5_000)
