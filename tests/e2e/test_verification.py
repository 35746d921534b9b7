"""The organiser verifies a buyer's organisation in Chromium, and its intent joins the totals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from deals import service as deal_service
from deals import totals as deal_totals
from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair

pytestmark = pytest.mark.e2e


def test_the_organiser_verifies_a_buyer_and_its_intent_counts(
    context: BrowserContext, signed_in: Callable[[BrowserContext, User], None],
    make_user: Callable[..., User], organiser: User, fair: Fair,
    make_project: Callable[..., Project], artifacts: Path,
) -> None:
    buyer = make_user(Role.buyer, province="CN-XZ", organisation="拉萨市群众艺术馆",
                      verified=False)
    make_user(Role.buyer, province="CN-CQ", organisation="重庆市渝中区文化馆", verified=False)
    project = make_project(fair, title="藏戏《文成公主》巡演")
    deal_service.record_intent(project.id, buyer=buyer, amount_fen=120_000_00,
                               idempotency_key="e2e-verification")
    assert deal_totals.read_figures(fair.id).amount_fen == 0
    signed_in(context, organiser)
    page = context.new_page()
    page.goto("/organiser/buyers")
    row = page.locator(f"#organisation-{buyer.organisation_id}")
    expect(row).to_contain_text("120,000.00")
    page.screenshot(path=str(artifacts / "buyer-verification.png"), full_page=True)

    row.get_by_role("button", name="核验 拉萨市群众艺术馆").click()
    expect(page.locator(".flash").first).to_contain_text(
        "已核验 拉萨市群众艺术馆")
    expect(page.locator(f"#organisation-{buyer.organisation_id}")).to_have_count(0)
    db.session.expire_all()
    assert deal_totals.read_figures(fair.id).amount_fen == 120_000_00

    page.goto("/organiser/buyers?status=verified")
    expect(page.locator(f"#organisation-{buyer.organisation_id}")).to_contain_text("取消核验")
    page.screenshot(path=str(artifacts / "buyer-verification-verified.png"), full_page=True)
