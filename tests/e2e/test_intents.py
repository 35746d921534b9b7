"""The intent form in Chromium: one intent per form however often it is sent, and withdrawal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect
from sqlalchemy import func, select

from deals.models import Intent, IntentStatus
from exhibitors.models import Project
from fair import service as fair_service
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair

pytestmark = pytest.mark.e2e


@pytest.fixture
def buyer_page(context: BrowserContext, signed_in: Callable[[BrowserContext, User], None],
               make_user: Callable[..., User]) -> Page:
    signed_in(context, make_user(Role.buyer, province="CN-XZ"))
    return context.new_page()


def intents() -> list[Intent]:
    db.session.expire_all()
    return list(db.session.scalars(select(Intent).order_by(Intent.id)))


def test_a_double_click_and_a_retry_after_a_lost_answer_make_one_intent(
    buyer_page: Page, fair: Fair, make_project: Callable[..., Project], artifacts: Path
) -> None:
    project = make_project(fair, title="藏戏《文成公主》巡演")
    page = buyer_page
    lost: list[str] = []

    def lose_the_first_answer(route: Route) -> None:
        # The server records the intent, but its answer never reaches the page.
        if not lost:
            route.fetch()
            lost.append(route.request.headers["idempotency-key"])
            route.abort()
        else:
            route.continue_()

    page.route(f"**/api/v1/projects/{project.id}/deals", lose_the_first_answer)
    page.goto(f"/projects/{project.id}")
    form = page.locator("form.intent-form")
    form.locator('input[name="amount"]').fill("120000.00")
    form.locator('textarea[name="note"]').fill("明年春节驻场演出")
    form.locator('button[type="submit"]').dblclick()
    expect(form.locator(".intent-form-status")).to_contain_text("网络中断")
    assert len(intents()) == 1

    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.headers.get("idempotency-key", ""))
            if request.method == "POST" else None)
    form.locator('button[type="submit"]').click()
    expect(form.locator(".intent-form-status")).to_contain_text("120000.00")
    assert sent == lost  # the retry carried the first attempt's key
    recorded = intents()
    assert len(recorded) == 1
    assert recorded[0].amount_fen == 12_000_000
    assert recorded[0].note == "明年春节驻场演出"
    page.screenshot(path=str(artifacts / "intent-form-signed.png"))

    form.locator(".intent-again").click()
    form.locator('input[name="amount"]').fill("8800.5")
    form.locator('button[type="submit"]').click()
    expect(form.locator(".intent-form-status")).to_contain_text("8800.50")
    assert [intent.amount_fen for intent in intents()] == [12_000_000, 880_050]


def test_an_amount_that_is_not_yuan_is_refused_before_it_is_sent(
    buyer_page: Page, fair: Fair, make_project: Callable[..., Project]
) -> None:
    project = make_project(fair)
    page = buyer_page
    page.goto(f"/projects/{project.id}")
    form = page.locator("form.intent-form")
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url)
            if request.method == "POST" else None)
    # The server's limit is on the page before anything is typed.
    expect(form.locator(".intent-amount-hint")).to_contain_text("100,000,000.00")
    for amount in ("1e5", "12.345", "-5", "12,50"):
        form.locator('input[name="amount"]').fill(amount)
        form.locator('button[type="submit"]').click()
        expect(form.locator(".intent-form-status")).to_contain_text("120000.00")
    form.locator('input[name="amount"]').fill("100,000,000.01")
    form.locator('button[type="submit"]').click()
    expect(form.locator(".intent-form-status")).to_contain_text("最多 100,000,000.00 元")
    assert sent == []
    assert db.session.scalar(select(func.count()).select_from(Intent)) == 0


@pytest.mark.parametrize(("typed", "fen"), [
    ("12,000", 1_200_000), ("１２,０００元", 1_200_000), ("¥ 8,800.5", 880_050),
    ("100,000,000", 10_000_000_000),
])
def test_what_people_type_is_sent_as_the_apis_ascii_amount(
    buyer_page: Page, fair: Fair, make_project: Callable[..., Project], typed: str, fen: int,
) -> None:
    project = make_project(fair)
    page = buyer_page
    page.goto(f"/projects/{project.id}")
    form = page.locator("form.intent-form")
    with page.expect_request(f"**/api/v1/projects/{project.id}/deals") as request:
        form.locator('input[name="amount"]').fill(typed)
        form.locator('button[type="submit"]').click()
    assert request.value.post_data_json["amount"] == f"{fen // 100}.{fen % 100:02d}"
    expect(form.locator(".intent-form-done")).to_be_visible()
    assert [intent.amount_fen for intent in intents()] == [fen]


def test_a_buyer_withdraws_an_intent_from_my_intents(
    buyer_page: Page, fair: Fair, make_project: Callable[..., Project], artifacts: Path
) -> None:
    project = make_project(fair, title="蜀绣研学体验课")
    page = buyer_page
    page.goto(f"/projects/{project.id}")
    form = page.locator("form.intent-form")
    form.locator('input[name="amount"]').fill("56000")
    form.locator('button[type="submit"]').click()
    expect(form.locator(".intent-form-status")).to_contain_text("56000.00")

    page.goto("/my/intents")
    expect(page.locator(".intents-table")).to_contain_text("56,000.00")
    page.screenshot(path=str(artifacts / "my-intents.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="撤回").click()
    expect(page.locator(".flash")).to_contain_text("蜀绣研学体验课")
    assert [intent.status for intent in intents()] == [IntentStatus.withdrawn]


def test_an_amount_above_the_fairs_ceiling_is_refused_in_the_pages_words(
    buyer_page: Page, fair: Fair, make_project: Callable[..., Project], organiser: User,
    artifacts: Path,
) -> None:
    fair_service.update_fair(fair, organiser=organiser, changes={"max_intent_fen": 50_000_00})
    project = make_project(fair, title="非遗手作体验课")
    page = buyer_page
    page.goto(f"/projects/{project.id}")
    form = page.locator("form.intent-form")
    form.locator('input[name="amount"]').fill("50000.01")
    form.locator('button[type="submit"]').click()
    expect(form.locator(".intent-form-status")).to_have_text("金额超过本届大会单笔签约意向的上限。")
    page.screenshot(path=str(artifacts / "intent-form-ceiling.png"))
    assert intents() == []
    form.locator('input[name="amount"]').fill("50000.00")
    form.locator('button[type="submit"]').click()
    expect(form.locator(".intent-form-status")).to_contain_text("50000.00")
    assert [intent.amount_fen for intent in intents()] == [50_000_00]
