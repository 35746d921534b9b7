"""The demo's halls: showcases across the three halls over the fair's days, the first of
today on air in each, every showcased project with a short generated video of its own."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from exhibitors import media as media_files
from exhibitors.models import Media, MediaKind
from fair import demo
from fair.database import as_utc
from fair.extensions import db
from livehalls.models import Hall, Showcase
from tests.media_tools import require

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture
def media_root(app: Flask) -> Path:
    return Path(app.config["MEDIA_ROOT"])


def build(media_root: Path) -> demo.DemoFair:
    return demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=12, projects=80)


def test_every_hall_has_a_schedule_over_the_fair_and_a_showcase_on_air_now(
    media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "demo_videos", lambda titles, media_root: [None] * len(titles))
    built = build(media_root)
    halls = db.session.scalars(select(Hall).order_by(Hall.id)).all()
    days = (built.fair.ends_at - built.fair.starts_at).days
    now = dt.datetime.now(dt.UTC)
    for hall in halls:
        showcases = db.session.scalars(select(Showcase).where(Showcase.hall_id == hall.id)
                                       .order_by(Showcase.starts_at)).all()
        assert len(showcases) == days * demo.SHOWCASES_PER_DAY
        dates = {as_utc(s.starts_at).date() for s in showcases}
        assert len(dates) >= days
        for earlier, later in itertools.pairwise(showcases):
            assert as_utc(earlier.ends_at) <= as_utc(later.starts_at)  # no overlap
        on_air = hall.on_air
        assert on_air is not None
        assert as_utc(on_air.starts_at) <= now < as_utc(on_air.ends_at)
    projects = db.session.scalars(select(Showcase.project_id)).all()
    assert len(set(projects)) == len(projects)  # each showcase its own project


def test_every_showcased_project_has_its_own_short_video(media_root: Path) -> None:
    tools = require("ffmpeg", "ffprobe")
    build(media_root)
    showcased = set(db.session.scalars(select(Showcase.project_id)))
    videos = db.session.scalars(select(Media).where(Media.kind == MediaKind.video)).all()
    assert {video.project_id for video in videos} == showcased
    assert len({video.sha256 for video in videos}) == len(videos)  # titles differ, so do videos
    path = media_files.file_path(media_root, videos[0].sha256, MediaKind.video)
    probed = subprocess.run(  # noqa: S603 - the test's own command
        [tools["ffprobe"], "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height:format=duration", "-of", "default=nw=1", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    assert "width=320" in probed
    assert "height=180" in probed
    duration = float(next(line for line in probed.splitlines()
                          if line.startswith("duration=")).split("=")[1])
    assert abs(duration - demo.VIDEO_SECONDS) < 0.5


def test_the_videos_are_made_once_and_found_again_by_what_they_show(
    media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("ffmpeg")
    first = demo.demo_videos([("川剧变脸专场演出", "主会场"), ("蜀绣体验课", "主会场")],
                             media_root=media_root)
    assert all(first)
    assert first[0].sha256 != first[1].sha256  # type: ignore[union-attr]

    def no_ffmpeg(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("ffmpeg ran again")

    monkeypatch.setattr(demo.subprocess, "run", no_ffmpeg)
    again = demo.demo_videos([("蜀绣体验课", "主会场"), ("川剧变脸专场演出", "主会场")],
                             media_root=media_root)
    assert [item.sha256 for item in again] == [first[1].sha256, first[0].sha256]  # type: ignore[union-attr]


def test_without_ffmpeg_the_demo_keeps_its_schedule_without_videos(
    media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo.shutil, "which", lambda name: None)
    build(media_root)
    assert db.session.scalars(select(Showcase)).first() is not None
    assert db.session.scalars(select(Media).where(Media.kind == MediaKind.video)).first() is None
