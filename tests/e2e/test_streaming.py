"""Streaming in the browser: the organiser's day view (overlap shown before saving, on air with
feedback, push details copied and regenerated), the hall playing a live HLS stream pushed
through nginx-rtmp (the video advances, on a phone too) and its replay on the project page."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from exhibitors.models import Project
from fair.accounts.models import User
from fair.models import Fair
from livehalls import mediaserver, service, streaming
from livehalls.models import Hall, Showcase
from tests.e2e.waiting import wait_until
from tests.media_tools import require
from tests.serving import SECRET_KEY, Server, consume, free_port, serve

pytestmark = pytest.mark.e2e

TODAY_BEIJING = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()


@pytest.fixture
def hall(fair: Fair, organiser: User) -> Hall:
    return service.create_hall(fair, organiser=organiser, name="一号直播厅")


def beijing(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(TODAY_BEIJING, dt.time(hour, minute),
                               dt.timezone(dt.timedelta(hours=8)))


def test_the_organiser_schedules_sees_the_overlap_puts_on_air_and_hands_out_the_key(
    context: BrowserContext, hall: Hall, fair: Fair, organiser: User,
    make_project: Callable[..., Project], signed_in: Callable[[BrowserContext, User], None],
    artifacts: Path,
) -> None:
    first = make_project(fair, title="川剧变脸专场演出")
    make_project(fair, title="蜀绣非遗体验课")
    service.schedule_showcase(hall, organiser=organiser, project_id=first.id,
                              starts_at=beijing(10), ends_at=beijing(11))
    signed_in(context, organiser)
    page = context.new_page()
    page.goto(f"/organiser/halls/{hall.id}?day={TODAY_BEIJING.isoformat()}")
    form = page.locator("#schedule-form")
    # The default slot is taken: the form suggests the hour after the day's last showcase.
    expect(form.locator("input[name=start]")).to_have_value("11:00")
    expect(form.locator("input[name=end]")).to_have_value("12:00")
    # The candidates are sorted by title: 川剧… then 蜀绣….
    form.locator("select[name=project_id]").select_option(index=1)
    form.locator("input[name=start]").fill("10:30")
    form.locator("input[name=end]").fill("11:30")
    # The overlap shows before saving, and saving waits until it is gone.
    expect(page.get_by_test_id("overlap")).to_contain_text("川剧变脸专场演出")
    expect(form.locator("button[type=submit]")).to_be_disabled()
    page.screenshot(path=str(artifacts / "streaming-day-overlap.png"), full_page=True)
    form.locator("input[name=start]").fill("11:00")
    form.locator("input[name=end]").fill("12:00")
    expect(page.get_by_test_id("overlap")).to_be_empty()
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("status")).to_have_text("已安排节目。")
    expect(page.locator("#day-list > li")).to_have_count(2, timeout=10_000)

    # On air, with feedback; then the push details of the first showcase.
    row = page.locator("#day-list > li").first
    row.locator(".on-air").click()
    expect(page.get_by_test_id("status")).to_contain_text("已上播：川剧变脸专场演出")
    expect(page.locator("#day-badge")).to_have_text("直播中", timeout=10_000)
    row = page.locator("#day-list > li").first
    row.locator(".push-show").click()
    key = row.get_by_test_id("push-stream_key")
    expect(key).not_to_have_value("")
    old_key = key.input_value()
    assert old_key.startswith(f"h{hall.id}s")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator(".push-regenerate").click()
    expect(page.get_by_test_id("status")).to_contain_text("已重新生成推流码")
    assert key.input_value() != old_key
    row.locator(".copy").nth(1).click()
    expect(row.locator(".copy").nth(1)).to_have_text("已复制。")
    page.screenshot(path=str(artifacts / "streaming-day.png"), full_page=True)


# --- a real stream, in the hall and as a replay -------------------------------------------------


@dataclass(frozen=True)
class Stack:
    fair: Server
    media: mediaserver.MediaServer


@pytest.fixture
def stack(app: Flask, tmp_path: Path) -> Iterator[Stack]:
    """nginx-rtmp, the fair pointed at it (gunicorn) and a task consumer, on the test's data."""
    require("nginx", "ffmpeg")
    database_file = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    port = free_port()
    with mediaserver.running(fair_url=f"http://127.0.0.1:{port}", secret_key=SECRET_KEY,
                             rtmp_port=free_port(), http_port=free_port()) as media:
        app.config.update(media.settings)
        environment = {**media.settings, "FAIR_BIND": f"127.0.0.1:{port}"}
        with (
            serve(database_file, log=tmp_path / "fair.log", environment=environment,
                  media_root=Path(app.config["MEDIA_ROOT"])) as fair,
            consume(database_file, log=tmp_path / "consumer.log", environment=environment),
        ):
            yield Stack(fair, media)


def push(url: str, *, seconds: int) -> subprocess.Popen[bytes]:
    ffmpeg = require("ffmpeg")["ffmpeg"]
    return subprocess.Popen(  # noqa: S603 - the test's own command
        [ffmpeg, "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         f"testsrc2=size=640x360:rate=25:duration={seconds}", "-c:v", "libx264", "-preset",
         "veryfast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p", "-profile:v",
         "baseline", "-f", "flv", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def video_time(page: Page) -> float:
    return float(page.evaluate("document.getElementById('player').currentTime"))


def test_the_hall_plays_the_live_stream_and_the_project_page_its_replay(
    browser: Browser, stack: Stack, hall: Hall, fair: Fair, organiser: User,
    make_project: Callable[..., Project], artifacts: Path,
) -> None:
    project = make_project(fair, title="川剧变脸专场演出")
    now = dt.datetime.now(dt.UTC)
    showcase: Showcase = service.schedule_showcase(
        hall, organiser=organiser, project_id=project.id,
        starts_at=now - dt.timedelta(minutes=5), ends_at=now + dt.timedelta(minutes=30))
    details = streaming.push_details(showcase, user=organiser)
    phone = browser.new_context(base_url=stack.fair.url, locale="zh-CN",
                                viewport={"width": 390, "height": 844}, is_mobile=True,
                                has_touch=True)
    try:
        page = phone.new_page()
        page.goto(f"/halls/{hall.id}")
        expect(page.locator(".hall")).to_have_attribute("data-state", "live", timeout=15_000)
        encoder = push(details.url, seconds=25)
        try:
            # The push puts the showcase on air by itself; the page plays its HLS.
            expect(page.locator("#live-badge")).to_have_text("直播中", timeout=15_000)
            expect(page.locator("#player")).to_be_visible()
            wait_until(page, "document.getElementById('player').currentTime > 1", timeout=20_000)
            before = video_time(page)
            page.wait_for_timeout(2_000)
            assert video_time(page) > before + 1  # the live video advances
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # phone-sized
            expect(page.locator("#chat-lines")).to_be_attached()
            page.screenshot(path=str(artifacts / "streaming-hall-phone.png"), full_page=True)
            assert encoder.wait(timeout=40) == 0
        finally:
            if encoder.poll() is None:
                encoder.kill()
        # The stream's end takes it off air, and the page says so.
        expect(page.locator("#live-badge")).to_have_text("未开播", timeout=10_000)
        expect(page.locator("#player-idle")).to_have_text("直播已结束，请留意节目单。")

        # The recording becomes a replay that plays on the project page.
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=40)
        while dt.datetime.now(dt.UTC) < deadline:
            listed = requests.get(f"{stack.fair.url}/api/v1/halls/{hall.id}/showcases",
                                  timeout=5).json()
            if listed[0]["replay_url"]:
                break
            page.wait_for_timeout(500)
        else:
            raise AssertionError("no replay")
        page.goto(f"/projects/{project.id}")
        replay = page.get_by_test_id("replay").locator("video")
        expect(replay).to_be_visible()
        replay.evaluate("video => { video.muted = true; return video.play(); }")
        wait_until(page, "document.querySelector('[data-testid=replay] video').currentTime > 1",
                   timeout=15_000)
        page.screenshot(path=str(artifacts / "streaming-replay-phone.png"), full_page=True)
    finally:
        phone.close()


def test_the_demo_halls_show_moving_pictures_and_a_schedule(
    app: Flask, context: BrowserContext, artifacts: Path
) -> None:
    """`make run` without a media server: every hall plays its showcase's generated video."""
    require("ffmpeg")
    from fair import demo

    demo.build_demo_fair(media_root=Path(app.config["MEDIA_ROOT"]), posters=1, exhibitors=8,
                         projects=70)
    page = context.new_page()
    page.goto("/halls")
    cards = page.locator(".hall-card")
    expect(cards).to_have_count(3)
    for number in range(3):
        page.goto("/halls")
        page.locator(".hall-card").nth(number).click()
        expect(page.locator("#live-badge")).to_have_text("直播中", timeout=15_000)
        expect(page.locator("#schedule li")).to_have_count(21)  # 3 a day for 7 days
        wait_until(page, "document.getElementById('player').currentTime > 1", timeout=15_000)
        if number == 0:
            page.screenshot(path=str(artifacts / "streaming-demo-hall.png"))


def test_the_organiser_creates_renames_and_reorders_halls(
    context: BrowserContext, hall: Hall, fair: Fair, organiser: User,
    signed_in: Callable[[BrowserContext, User], None], artifacts: Path,
) -> None:
    signed_in(context, organiser)
    page = context.new_page()
    page.goto("/organiser/halls")
    page.locator("#new-hall-name").fill("非遗展演厅")
    page.get_by_role("button", name="＋ 开设直播厅").click()
    expect(page.get_by_test_id("status")).to_have_text("已开设直播厅。")
    rows = page.locator("#hall-rows tbody tr")
    expect(rows).to_have_count(2, timeout=10_000)
    # The new hall moves up, first in the list.
    rows.nth(1).locator(".hall-up").click()
    expect(rows.nth(0).locator(".hall-name")).to_have_value("非遗展演厅", timeout=10_000)
    row = rows.nth(1)
    row.locator(".hall-name").fill("主会场")
    row.locator(".hall-auto").uncheck()
    row.locator(".hall-grace").fill("20")
    row.locator(".hall-save").click()
    expect(page.get_by_test_id("status")).to_have_text("已保存。")
    page.screenshot(path=str(artifacts / "streaming-halls.png"), full_page=True)
    page.goto("/halls")
    expect(page.locator(".hall-card-name")).to_have_text(["非遗展演厅", "主会场"])


def test_the_hall_page_says_what_the_organisers_click_did(
    context: BrowserContext, hall: Hall, fair: Fair, organiser: User,
    make_project: Callable[..., Project], signed_in: Callable[[BrowserContext, User], None],
) -> None:
    project = make_project(fair, title="川剧变脸专场演出")
    service.schedule_showcase(hall, organiser=organiser, project_id=project.id,
                              starts_at=beijing(10), ends_at=beijing(11))
    signed_in(context, organiser)
    page = context.new_page()
    page.goto(f"/halls/{hall.id}")
    expect(page.locator(".hall")).to_have_attribute("data-state", "live", timeout=15_000)
    page.locator(".put-on-air").first.click()
    expect(page.locator("#control-status")).to_have_text("已上播：川剧变脸专场演出")
    expect(page.locator("#live-badge")).to_have_text("直播中")
    page.locator("#take-off-air").click()
    expect(page.locator("#control-status")).to_have_text("已下播。")
    expect(page.locator("#live-badge")).to_have_text("未开播")


@pytest.fixture
def exhibitor_page(
    context: BrowserContext, hall: Hall, fair: Fair, organiser: User,
    make_exhibitor: Callable[..., tuple[object, User]], make_project: Callable[..., Project],
    signed_in: Callable[[BrowserContext, User], None],
) -> Page:
    """A page signed in as an exhibitor whose project has a showcase in an hour."""
    _, owner = make_exhibitor(fair)
    project = make_project(fair, user=owner, title="蜀绣非遗体验课")
    now = dt.datetime.now(dt.UTC)
    service.schedule_showcase(hall, organiser=organiser, project_id=project.id,
                              starts_at=now + dt.timedelta(hours=1),
                              ends_at=now + dt.timedelta(hours=2))
    signed_in(context, owner)
    return context.new_page()


def test_the_exhibitor_finds_its_showcases_and_push_details_in_the_portal(
    exhibitor_page: Page, hall: Hall, artifacts: Path,
) -> None:
    page = exhibitor_page
    page.goto("/portal")
    page.get_by_role("link", name="我的直播").click()
    expect(page.get_by_test_id("upcoming")).to_contain_text("蜀绣非遗体验课")
    page.locator(".push-show").click()
    expect(page.get_by_test_id("push-stream_key")).to_have_value(
        re.compile(rf"^h{hall.id}s\d+\?e=\d+&s=[0-9a-f]{{40}}$"), timeout=15_000)
    expect(page.locator(".push-regenerate")).to_have_count(0)  # organisers regenerate
    page.screenshot(path=str(artifacts / "streaming-portal.png"), full_page=True)


def test_the_push_details_button_waits_for_the_script_that_answers_it(
    exhibitor_page: Page,
) -> None:
    page = exhibitor_page
    held: list[Route] = []
    page.route("**/livehalls/manage.js", lambda route: held.append(route))
    # "commit": a module script that is held holds DOMContentLoaded too.
    page.goto("/portal/showcases", wait_until="commit")
    # Before its script listens, a click would do nothing: the button says it cannot be used.
    expect(page.locator(".push-show")).to_be_disabled()
    for _ in range(100):  # the held request reaches the handler when Playwright next reads
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1
    held[0].fallback()
    expect(page.locator(".push-show")).to_be_enabled()
