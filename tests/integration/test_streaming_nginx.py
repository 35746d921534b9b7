"""A real push through the media server: ffmpeg streams a 10-second test pattern over RTMP to
nginx-rtmp, which asks the fair (gunicorn) before accepting it, serves it as HLS, and records
it; the fair's consumer turns the recording into a replay.

Needs nginx, libnginx-mod-rtmp and ffmpeg (`make test` installs them): skipped locally without
them, failed in CI.
"""

from __future__ import annotations

import datetime as dt
import queue
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from socketio import Client as SocketClient

from exhibitors.models import Project
from fair.accounts.models import User
from fair.models import Fair
from livehalls import mediaserver, rooms, service, streaming
from livehalls.models import Hall, PushAttempt, Showcase
from tests.media_tools import require
from tests.serving import SECRET_KEY, Server, consume, free_port, serve

pytestmark = pytest.mark.integration

PUSHED_SECONDS = 10


@pytest.fixture
def tools() -> dict[str, str]:
    return require("nginx", "ffmpeg", "ffprobe")


@pytest.fixture
def media(tools: dict[str, str]) -> Iterator[tuple[str, mediaserver.MediaServer]]:
    """The media server, and the address the fair's server will listen at for its hooks."""
    fair_port = free_port()
    fair_url = f"http://127.0.0.1:{fair_port}"
    with mediaserver.running(fair_url=fair_url, secret_key=SECRET_KEY, rtmp_port=free_port(),
                             http_port=free_port()) as server:
        yield fair_url, server


@pytest.fixture
def now_showcase(app: Flask, hall: Hall, organiser: User, fair: Fair,
                 make_project: Callable[..., Project]) -> Showcase:
    now = dt.datetime.now(dt.UTC)
    return service.schedule_showcase(hall, organiser=organiser, project_id=make_project(fair).id,
                                     starts_at=now - dt.timedelta(minutes=5),
                                     ends_at=now + dt.timedelta(minutes=30))


@pytest.fixture
def hall(fair: Fair, organiser: User) -> Hall:
    return service.create_hall(fair, organiser=organiser, name="一号直播厅")


def push(ffmpeg: str, url: str, *, seconds: int) -> subprocess.Popen[bytes]:
    """Stream a test pattern in real time (-re), a keyframe every second for 1 s fragments."""
    return subprocess.Popen(  # noqa: S603 - the test's own command
        [ffmpeg, "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         f"testsrc=size=320x180:rate=25:duration={seconds}", "-c:v", "libx264", "-preset",
         "veryfast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p", "-f", "flv",
         url],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def until(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_a_pushed_stream_goes_live_off_air_and_becomes_a_replay(
    app: Flask, tmp_path: Path, database_file: Path, tools: dict[str, str],
    media: tuple[str, mediaserver.MediaServer], hall: Hall, now_showcase: Showcase,
    organiser: User,
) -> None:
    fair_url, server = media
    app.config.update(server.settings)
    details = streaming.push_details(now_showcase, user=organiser)
    environment = {**server.settings, "FAIR_BIND": fair_url.removeprefix("http://")}
    with (
        serve(database_file, log=tmp_path / "fair.log", environment=environment) as fair,
        consume(database_file, log=tmp_path / "consumer.log", environment=environment),
    ):
        on_air: queue.Queue[dict[str, Any]] = queue.Queue()
        viewer = SocketClient()
        viewer.on("on_air", on_air.put, namespace=rooms.NAMESPACE)
        viewer.connect(fair.url, namespaces=[rooms.NAMESPACE], transports=["websocket"],
                       wait_timeout=10)
        try:
            assert viewer.call("join_hall", {"hall_id": hall.id}, namespace=rooms.NAMESPACE,
                               timeout=10)["ok"]

            # A wrong key is refused by the fair's on_publish answer: ffmpeg fails.
            bad = push(tools["ffmpeg"], details.url.replace("&s=", "&s=0"), seconds=3)
            assert bad.wait(timeout=20) != 0
            bad.stderr.close()

            started = time.monotonic()
            good = push(tools["ffmpeg"], details.url, seconds=PUSHED_SECONDS)
            try:
                playlist = until(lambda: _get(details.hls_url), timeout=8,
                                 what="the HLS playlist")
                assert "#EXTM3U" in playlist
                shown = until(lambda: _hall(fair, hall)["on_air"], timeout=5, what="on air")
                assert (shown["id"], shown["live_url"]) == (now_showcase.id, details.hls_url)
                heard = on_air.get(timeout=5)
                assert heard["showcase"]["id"] == now_showcase.id
                assert good.wait(timeout=PUSHED_SECONDS + 20) == 0, good.stderr.read()
            finally:
                if good.poll() is None:
                    good.kill()
                good.stderr.close()
            ended = time.monotonic()
            assert ended - started >= PUSHED_SECONDS - 1

            # The stream's end takes it off air: viewers hear it within seconds.
            off = on_air.get(timeout=5)
            assert off == {"hall_id": hall.id, "showcase": None}
            assert time.monotonic() - ended < 5
            assert _hall(fair, hall)["on_air"] is None
        finally:
            viewer.disconnect()

        # The recording becomes a replay of what was pushed, served with ranges.
        replay = until(lambda: _schedule(fair, hall)[0]["replay_url"], timeout=30,
                       what=f"the replay\n{(tmp_path / 'consumer.log').read_text()}")
        downloaded = tmp_path / "replay.mp4"
        downloaded.write_bytes(requests.get(f"{fair.url}{replay}", timeout=10).content)
        duration = float(subprocess.run(  # noqa: S603 - the test's own command
            [tools["ffprobe"], "-v", "error", "-show_entries", "format=duration", "-of",
             "csv=p=0", str(downloaded)], check=True, capture_output=True, text=True,
        ).stdout)
        assert abs(duration - PUSHED_SECONDS) <= 1, duration
        part = requests.get(f"{fair.url}{replay}", headers={"Range": "bytes=0-9"}, timeout=10)
        assert (part.status_code, len(part.content)) == (206, 10)

    from fair.extensions import db

    db.session.expire_all()
    reasons = [a.reason for a in db.session.scalars(
        db.select(PushAttempt).where(PushAttempt.hall_id == hall.id).order_by(PushAttempt.id))]
    assert reasons == ["bad_signature", ""]


def _get(url: str | None) -> str | None:
    assert url is not None
    try:
        answer = requests.get(url, timeout=2)
    except requests.RequestException:
        return None
    return answer.text if answer.status_code == 200 else None


def _hall(fair: Server, hall: Hall) -> dict[str, Any]:
    return requests.get(f"{fair.url}/api/v1/halls/{hall.id}", timeout=5).json()


def _schedule(fair: Server, hall: Hall) -> list[dict[str, Any]]:
    return requests.get(f"{fair.url}/api/v1/halls/{hall.id}/showcases", timeout=5).json()


def test_the_demo_pushes_a_showcase_video_live(
    app: Flask, tmp_path: Path, database_file: Path, tools: dict[str, str],
    media: tuple[str, mediaserver.MediaServer],
) -> None:
    """With a media server, `flask fair demo-push` streams the demo's showcase on air."""
    import os
    import sys

    from fair import demo
    from fair.extensions import db
    from tests.serving import ROOT

    fair_url, server = media
    demo.build_demo_fair(media_root=Path(app.config["MEDIA_ROOT"]), posters=1, exhibitors=4,
                         projects=12)
    hall = db.session.scalars(db.select(Hall).order_by(Hall.position)).first()
    environment = {**server.settings, "FAIR_BIND": fair_url.removeprefix("http://")}
    with serve(database_file, log=tmp_path / "fair.log", environment=environment,
               media_root=Path(app.config["MEDIA_ROOT"])) as fair:
        command = {**os.environ, **server.settings, "SECRET_KEY": SECRET_KEY,
                   "DATABASE_URL": f"sqlite:///{database_file}",
                   "MEDIA_ROOT": app.config["MEDIA_ROOT"]}
        pushing = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "fair", "demo-push", "--seconds",
             "8"], cwd=ROOT, env=command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            shown = until(lambda: (_hall(fair, hall)["on_air"] or {}).get("live_url"),
                          timeout=15, what="the demo's live stream")
            assert until(lambda: _get(shown), timeout=10, what="its playlist")
            assert pushing.wait(timeout=30) == 0
        finally:
            if pushing.poll() is None:
                pushing.kill()
            output = pushing.stdout.read().decode() if pushing.stdout else ""
            if pushing.stdout:
                pushing.stdout.close()
        assert "Pushing" in output
    db.session.expire_all()
    reasons = [a.reason for a in db.session.scalars(db.select(PushAttempt))]
    assert reasons == [""]
