"""`fair simulate`: simulated buyers signing while a server runs, as the README's demo does:
posting to it (`--api`), or writing to its database from another process (the replay)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from flask import Flask
from playwright.sync_api import BrowserContext, expect
from sqlalchemy import select

from deals import simulate
from deals.models import IdempotencyKey, Intent
from fair import demo
from fair.accounts.models import User
from fair.extensions import db
from fair.money import format_wan, format_yuan
from tests.serving import ROOT, SECRET_KEY, Server

pytestmark = pytest.mark.e2e


def test_simulate_posts_intents_to_a_running_server(
    app: Flask, live_server: Server, fair_cli: Callable[..., str], tmp_path: Path
) -> None:
    built = demo.build_demo_fair(media_root=tmp_path / "media", posters=1, exhibitors=6,
                                 projects=12)
    fair_id = built.fair.id
    output = fair_cli("fair", "simulate", "--api", live_server.url, "--count", "12",
                      "--rate", "0", "--seed", "5")
    assert f"through {live_server.url}" in output
    totals = requests.get(f"{live_server.url}/api/v1/fairs/{fair_id}/totals", timeout=10).json()
    assert totals["deal_count"] == 12
    assert totals["seq"] == 12
    assert f"{totals['amount']} yuan" in output


def test_the_replay_posts_its_intents_from_needs_as_responses_turned_into_intents(
    app: Flask, live_server: Server, fair_cli: Callable[..., str], tmp_path: Path
) -> None:
    fair = demo.build_demo_fair(media_root=tmp_path / "media", posters=1, exhibitors=6,
                                projects=12).fair
    fair_id = fair.id
    output = fair_cli("fair", "simulate", "--replay", "--api", live_server.url, "--count", "30",
                      "--rate", "0")
    planned = simulate.replay_plan(fair, projects=simulate.published_projects(fair),
                                   halls=simulate.halls_of(fair),
                                   buyers=simulate.simulated_buyers())[:30]
    sourced = sum(intent.from_need for intent in planned)
    assert f"{sourced} of them from responses to the buyers' needs" in output
    totals = requests.get(f"{live_server.url}/api/v1/fairs/{fair_id}/totals", timeout=10).json()
    assert totals["deal_count"] == 30
    assert totals["amount"] == format_yuan(sum(intent.amount_fen for intent in planned))
    db.session.remove()
    keys = db.session.scalars(
        select(IdempotencyKey.key).join(Intent, Intent.id == IdempotencyKey.intent_id)
        .where(Intent.response_id.is_not(None))).all()
    assert sorted(keys) == sorted(intent.key for intent in planned if intent.from_need)
    assert sourced > 0


def test_the_readmes_replay_moves_an_open_dashboard_without_a_reload(
    app: Flask, live_server: Server, context: BrowserContext,
    signed_in: Callable[[BrowserContext, User], None], tmp_path: Path,
) -> None:
    # `make run` at a small scale: gunicorn on the embedded SQLite file, no Redis, the demo
    # fair; then the README's command from "a second terminal", shortened.
    fair = demo.build_demo_fair(media_root=tmp_path / "media", posters=1, exhibitors=6,
                                projects=12).fair
    organiser = db.session.scalar(select(User).where(User.email == demo.ORGANISER_EMAIL))
    assert organiser is not None
    count = 80
    planned = simulate.plan_intents(
        count=simulate.REFERENCE_INTENTS, projects=[1], halls=[], buyer_weights=[1],
        rng=random.Random(simulate.REPLAY_SEED), total_fen=simulate.REFERENCE_AMOUNT_FEN,
        key_prefix="replay")[:count]
    signed_in(context, organiser)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/dashboard")
    expect(page.locator("body")).to_have_attribute("data-state", "live")
    expect(page.get_by_test_id("deal-count")).to_have_text("0")
    page.evaluate("window.notReloaded = true")

    with subprocess.Popen(  # noqa: S603 - the README's command, shortened
        [sys.executable, "-m", "flask", "--app", "wsgi", "fair", "simulate", "--replay",
         "--count", str(count), "--rate", "20"],
        cwd=ROOT, env=cli_environment(app), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    ) as replay:
        try:
            # Moving while the replay runs, not only once it is over.
            seen_midway = False
            while replay.poll() is None:
                shown = int(page.get_by_test_id("deal-count").inner_text().replace(",", ""))
                seen_midway = seen_midway or 0 < shown < count
                page.wait_for_timeout(200)
            output = replay.communicate(timeout=30)[0]
        finally:
            if replay.poll() is None:
                replay.kill()
    assert replay.returncode == 0, output
    assert f"Signing {count} intents on 「{fair.name}」" in output
    assert seen_midway
    expect(page.get_by_test_id("deal-count")).to_have_text(str(count), timeout=3000)
    expect(page.get_by_test_id("total-wan")).to_have_text(
        format_wan(sum(intent.amount_fen for intent in planned)), timeout=3000)
    assert page.evaluate("window.notReloaded") is True
    assert errors == []


def cli_environment(app: Flask) -> dict[str, str]:
    """What `flask --app wsgi ...` from a second terminal sees: the same database, no Redis."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in {"REDIS_URL", "DATABASE_URL"}}
    environment.update({"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
                        "MEDIA_ROOT": app.config["MEDIA_ROOT"], "SECRET_KEY": SECRET_KEY})
    return environment
