"""Streaming through the media server: glass-to-glass latency and nginx's CPU per stream.

    .venv/bin/python bench/stream.py                 # latency, then 1 and 3 streams for CPU
    .venv/bin/python bench/stream.py --seconds 30 --streams 1 3 5

Builds a fresh SQLite fair with a showcase on now in each of a few halls, starts nginx-rtmp
(livehalls/mediaserver.py: HLS in 1-second fragments, recording on) and gunicorn pointed at
each other, and pushes ffmpeg test patterns (640x360, 25 fps, a keyframe a second, x264
zerolatency) as an encoder would.

Latency: the encoder burns its own clock into every frame, as text for people and as a row
of 20 black-or-white blocks for the bench (the frame's time in hundredths of a second since
the encoder started). Chromium opens the hall page, whose hls.js plays the live HLS; four
times a second the bench draws the frame on screen to a canvas, reads the blocks back, and
compares the frame's time with the wall clock: encoder -> RTMP -> nginx -> HLS -> player ->
screen. The encoder's start-up counts against it, so the figures are upper bounds. Target:
under 6 s.

CPU: nginx's master and worker CPU time (/proc) while N streams are pushed at once, divided by
N and by the wall time: the share of one core that a stream costs the media server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from servers import ROOT, SECRET_KEY, cpu_seconds, free_port, gunicorn, server_environment

sys.path.insert(0, str(ROOT))

from livehalls import mediaserver

PASSWORD = "bench-password-1"  # noqa: S105 - accounts in a throwaway database
BITS = 20
SIZE = (640, 360)
CHROMIUM = "/usr/bin/chromium"
FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


def build(database_url: str, folder: Path, halls: int) -> list[tuple[int, str]]:
    """A fair with `halls` halls, each with a showcase now; their (hall id, push URL)."""
    from flask_migrate import upgrade

    from exhibitors import service as exhibitor_service
    from fair import create_app
    from fair import service as fair_service
    from fair.accounts import service as account_service
    from fair.accounts.models import Role
    from fair.extensions import db
    from fair.models import FairStatus
    from livehalls import service as hall_service
    from livehalls import streaming

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": None,
                      "SECRET_KEY": SECRET_KEY, "MEDIA_ROOT": str(folder / "media")})
    pushes = []
    with app.app_context():
        upgrade()
        organiser = account_service.create_organiser(email="organiser@bench.example",
                                                     password=PASSWORD)
        now = dt.datetime.now(dt.UTC)
        fair = fair_service.create_fair(organiser=organiser, name="压测采购大会",
                                        starts_at=now, ends_at=now + dt.timedelta(days=1))
        fair_service.update_fair(fair, organiser=organiser, changes={"status": FairStatus.open})
        user = account_service.register_user(
            email="exhibitor@bench.example", password=PASSWORD, name="参展商",
            role=Role.exhibitor, organisation_name="成都文化馆", province="CN-SC")
        exhibitor = exhibitor_service.apply_to_fair(fair, user=user)
        exhibitor_service.approve_exhibitor(exhibitor, organiser=organiser)
        for number in range(halls):
            hall = hall_service.create_hall(fair, organiser=organiser, name=f"{number + 1}号厅")
            project = exhibitor_service.create_project(
                fair, user=user, title=f"川剧专场 {number}", category="performance",
                price_fen=12_000_000, summary="", description="", tags=())
            exhibitor_service.publish_project(project, user=user)
            showcase = hall_service.schedule_showcase(
                hall, organiser=organiser, project_id=project.id,
                starts_at=now - dt.timedelta(minutes=5), ends_at=now + dt.timedelta(hours=2))
            app.config["STREAM_PUSH_URL"] = "rtmp://placeholder/live"
            key = streaming.push_details(showcase, user=organiser).stream_key
            pushes.append((hall.id, key))
        db.engine.dispose()
    return pushes


def clock_filter() -> str:
    """The encoder's clock on every frame: blocks for the bench, text for people."""
    blocks = ["drawbox=x=0:y=0:w=iw:h=40:color=black:t=fill"]
    for bit in range(BITS):
        blocks.append(f"drawbox=x={8 + bit * 30}:y=8:w=24:h=24:color=white:t=fill:"
                      f"enable='eq(mod(floor(t*100/{2 ** bit}),2),1)'")
    blocks.append(f"drawtext=fontfile={FONT}:text='编码器时钟 %{{pts\\:hms}}':fontsize=28:"
                  "fontcolor=white:box=1:boxcolor=black@0.6:x=20:y=h-th-20")
    return ",".join(blocks)


def push(url: str, *, seconds: int) -> tuple[subprocess.Popen[bytes], float]:
    """Push a test pattern with the clock; when it started, by the wall clock."""
    started = time.time()
    encoder = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         f"testsrc2=size={SIZE[0]}x{SIZE[1]}:rate=25:duration={seconds}", "-vf", clock_filter(),
         "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "25",
         "-b:v", "1200k", "-pix_fmt", "yuv420p", "-f", "flv", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return encoder, started


READ_CLOCK = """() => {
  const video = document.getElementById("player");
  if (!video || video.readyState < 2) return null;
  const canvas = document.createElement("canvas");
  canvas.width = WIDTH; canvas.height = HEIGHT;
  const draw = canvas.getContext("2d", { willReadFrequently: true });
  draw.drawImage(video, 0, 0, canvas.width, canvas.height);
  let value = 0;
  for (let bit = 0; bit < BITS; bit++) {
    const pixel = draw.getImageData(8 + bit * 30 + 12, 20, 1, 1).data;
    if (pixel[0] + pixel[1] + pixel[2] > 384) value += 2 ** bit;
  }
  return [value, Date.now()];
}""".replace("WIDTH", str(SIZE[0])).replace("HEIGHT", str(SIZE[1])).replace("BITS", str(BITS))


def measure_latency(fair_url: str, hall_id: int, push_url: str, *, seconds: int
                    ) -> tuple[list[float], float]:
    """Latency samples (s) read in Chromium, and how long the first picture took."""
    from playwright.sync_api import sync_playwright

    samples: list[float] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM,
                                         args=["--no-sandbox", "--disable-gpu",
                                               "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{fair_url}/halls/{hall_id}")
        encoder, started = push(push_url, seconds=seconds)
        try:
            # Polled through evaluate: the page's CSP refuses wait_for_function's eval.
            deadline = time.monotonic() + 30
            while not page.evaluate("document.getElementById('player').currentTime > 0.5"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the player never started")
                page.wait_for_timeout(100)
            first_picture = time.time() - started
            # Let the player settle on its live position, as a viewer's would.
            page.wait_for_timeout(3_000)
            while encoder.poll() is None and time.time() - started < seconds - 1:
                read = page.evaluate(READ_CLOCK)
                if read is not None:
                    value, shown_ms = read
                    samples.append(shown_ms / 1000 - (started + value / 100))
                page.wait_for_timeout(250)
        finally:
            encoder.kill()
            encoder.wait()
            browser.close()
    return samples, first_picture


def nginx_cpu(server: mediaserver.MediaServer, pushes: list[tuple[int, str]], *, streams: int,
              seconds: int) -> float:
    """The share of one core (in %) nginx spends per stream while `streams` are pushed."""
    def processes() -> list[int]:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        return [server.pid, *map(int, children)]

    encoders = [push(url, seconds=seconds + 6)[0] for _, url in pushes[:streams]]
    try:
        time.sleep(4)  # the pushes accepted and the HLS muxers warmed up
        before = sum(cpu_seconds(pid) for pid in processes())
        started = time.monotonic()
        time.sleep(seconds)
        used = sum(cpu_seconds(pid) for pid in processes()) - before
        elapsed = time.monotonic() - started
    finally:
        for encoder in encoders:
            encoder.kill()
            encoder.wait()
    return 100 * used / elapsed / streams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=30, help="latency run, and each CPU run")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 3])
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-stream-") as folder_name, ExitStack() as stack:
        folder = Path(folder_name)
        database_url = f"sqlite:///{folder / 'fair.sqlite'}"
        # One showcase for the latency run, one per stream of the CPU runs: a push URL whose
        # stream ended is refused as reused a minute later.
        pushes = build(database_url, folder, halls=max(arguments.streams) + 1)
        rtmp_port, http_port = free_port(), free_port()
        media_folder = Path(tempfile.mkdtemp(prefix="bench-media-"))
        planned = mediaserver.MediaServer(media_folder, rtmp_port, http_port, pid=0)
        env = {**server_environment(database_url, None, folder / "media"), **planned.settings}
        fair = stack.enter_context(gunicorn(env, folder / "fair.log"))
        server = stack.enter_context(mediaserver.running(
            fair_url=fair.url, secret_key=SECRET_KEY, rtmp_port=rtmp_port, http_port=http_port,
            folder=media_folder))
        stack.callback(lambda: subprocess.run(["rm", "-rf", str(media_folder)], check=False))
        urls = [(hall, f"{server.push_url}/{key}") for hall, key in pushes]

        latency_hall, latency_url = urls.pop()
        samples, first = measure_latency(fair.url, latency_hall, latency_url,
                                         seconds=arguments.seconds)
        print("Glass-to-glass latency (encoder clock burned into the frame, read in Chromium "
              "from the hall page's hls.js; HLS 1 s fragments):")
        if samples:
            ordered = sorted(samples)
            print(f"  samples {len(samples)}  p50 {statistics.median(ordered):.2f} s  "
                  f"p95 {ordered[int(len(ordered) * 0.95) - 1]:.2f} s  "
                  f"max {ordered[-1]:.2f} s  min {ordered[0]:.2f} s  (target < 6 s)")
        else:
            print("  no frame could be read")
        print(f"  first picture {first:.2f} s after the encoder started (the hall went on air "
              "by itself)")
        time.sleep(3)  # the previous stream's end reaches the fair
        print("nginx-rtmp CPU (master + worker, /proc), HLS + recording, 640x360 25 fps 1.2 Mb/s:")
        for streams in arguments.streams:
            per_stream = nginx_cpu(server, urls, streams=streams, seconds=arguments.seconds)
            print(f"  {streams} stream(s): {per_stream:.2f} % of one core per stream")
            time.sleep(3)


if __name__ == "__main__":
    main()
