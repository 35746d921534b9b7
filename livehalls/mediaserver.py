"""A media server for the fair: nginx with its RTMP module, configured from
livehalls/nginx-rtmp.conf and run as an ordinary (non-root) process in a folder of its own,
with its own ports. The tests, the benchmark and `flask fair media-server` start it; a
deployment renders the same configuration and runs nginx as a service (README)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from exhibitors import media as media_files
from exhibitors.models import MediaKind
from fair.extensions import db
from livehalls import streaming
from livehalls.models import Hall, Showcase

TEMPLATE = Path(__file__).with_name("nginx-rtmp.conf")
#: Debian's dynamic RTMP module (libnginx-mod-rtmp).
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
#: Who nginx runs as when started by root: never root itself.
UNPRIVILEGED = "nobody"
START_SECONDS = 10.0


@dataclass(frozen=True)
class MediaServer:
    """A running media server and the settings that point the fair at it."""

    folder: Path
    rtmp_port: int
    http_port: int
    pid: int

    @property
    def push_url(self) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live"

    @property
    def hls_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/hls"

    @property
    def recordings(self) -> Path:
        return self.folder / "recordings"

    @property
    def settings(self) -> dict[str, str]:
        """The fair's environment for this server (fair/config.py)."""
        return {"STREAM_PUSH_URL": self.push_url, "STREAM_HLS_URL": self.hls_url,
                "STREAM_RECORDINGS": str(self.recordings)}

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def render(*, folder: Path, hooks: str, rtmp_listen: str, http_listen: str,
           recordings: Path | None = None) -> str:
    """The nginx configuration: `hooks` is the fair's hook URL up to and with its token."""
    return string.Template(TEMPLATE.read_text()).substitute(
        rtmp_module=RTMP_MODULE, workdir=folder, hooks=hooks.rstrip("/"),
        rtmp_listen=rtmp_listen, http_listen=http_listen,
        recordings=recordings or folder / "recordings",
    )


def hooks_url(fair_url: str, secret_key: str) -> str:
    return f"{fair_url.rstrip('/')}/api/v1/stream-hooks/{streaming.hook_token(secret_key)}"


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None or not RTMP_MODULE.exists():
        raise RuntimeError("nginx with its RTMP module is missing: "
                           "apt-get install nginx libnginx-mod-rtmp")
    return found


@contextmanager
def running(*, fair_url: str, secret_key: str, rtmp_port: int, http_port: int,
            folder: Path | None = None) -> Iterator[MediaServer]:
    """Run nginx until the block ends, in `folder` (a new temporary one by default)."""
    binary = nginx_binary()
    own_folder = folder is None
    folder = Path(tempfile.mkdtemp(prefix="fair-media-")) if folder is None else folder
    try:
        process = start(binary, folder=folder, hooks=hooks_url(fair_url, secret_key),
                        rtmp_port=rtmp_port, http_port=http_port)
        try:
            yield MediaServer(folder, rtmp_port, http_port, process.pid)
        finally:
            stop(process)
    finally:
        if own_folder:
            shutil.rmtree(folder, ignore_errors=True)


def start(binary: str, *, folder: Path, hooks: str, rtmp_port: int, http_port: int
          ) -> subprocess.Popen[bytes]:
    """Write the configuration into `folder` and start nginx there; wait for its ports."""
    for sub in ("hls", "recordings", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(render(folder=folder, hooks=hooks, rtmp_listen=f"127.0.0.1:{rtmp_port}",
                             http_listen=f"127.0.0.1:{http_port}"))
    user = None
    if os.geteuid() == 0:
        # Started by root (a container): nginx runs as nobody, in a folder nobody may write.
        account = pwd.getpwnam(UNPRIVILEGED)
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, account.pw_uid, account.pw_gid)
        user = account.pw_uid
    log = (folder / "stderr.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our binary and our configuration
        [binary, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(config)],
        stdout=log, stderr=subprocess.STDOUT, user=user, group=None if user is None else
        pwd.getpwuid(user).pw_gid, start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + START_SECONDS
    while not all(_listening(port) for port in (rtmp_port, http_port)):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            output = (folder / "stderr.log").read_text(errors="replace")
            errors = (folder / "error.log").read_text(errors="replace") \
                if (folder / "error.log").exists() else ""
            raise RuntimeError(f"nginx did not start:\n{output}\n{errors}")
        time.sleep(0.05)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop nginx quickly (its workers too: they are in its session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@click.command("media-server")
@click.option("--fair-url", default="http://127.0.0.1:5000", show_default=True,
              help="Where nginx reaches the fair's hooks.")
@click.option("--rtmp-port", default=1935, show_default=True)
@click.option("--http-port", default=8088, show_default=True)
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where nginx keeps its HLS and recordings (a temporary folder by default).")
@with_appcontext
def media_server_command(fair_url: str, rtmp_port: int, http_port: int,
                         folder: Path | None) -> None:
    """Run nginx-rtmp as the fair's media server until Ctrl-C; prints the fair's settings."""
    with running(fair_url=fair_url, secret_key=str(current_app.config["SECRET_KEY"]),
                 rtmp_port=rtmp_port, http_port=http_port, folder=folder) as server:
        click.echo("The media server runs; start the fair with:")
        for key, value in server.settings.items():
            click.echo(f"  {key}={value}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("Stopping the media server.")


@click.command("demo-push")
@click.option("--hall", "hall_id", type=int, default=None,
              help="The hall whose showcase on air to push (default: the first with one).")
@click.option("--seconds", type=int, default=0, show_default=True,
              help="Stop after this long; 0 pushes until Ctrl-C.")
@with_appcontext
def demo_push_command(hall_id: int | None, seconds: int) -> None:
    """Push the video of a showcase on air live through the media server, looped, as an
    exhibitor's encoder would (the demo with STREAM_PUSH_URL set)."""
    showcase = on_air_showcase(hall_id)
    video = next((item for item in showcase.project.media if item.kind is MediaKind.video), None)
    if video is None:
        raise click.ClickException("The showcase's project has no video to push.")
    details = streaming.operator_push_details(showcase)
    if not details.url:
        raise click.ClickException("Set STREAM_PUSH_URL (flask fair media-server prints it).")
    path = media_files.file_path(Path(current_app.config["MEDIA_ROOT"]), video.sha256,
                                 MediaKind.video)
    limit = ["-t", str(seconds)] if seconds else []
    click.echo(f"Pushing 「{showcase.project.title}」 to {details.server} "
               f"({showcase.stream_name}); its hall plays {details.hls_url}")
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(  # noqa: S603 - our tool, a stored file, our push URL
            [streaming.tool("ffmpeg"), "-nostdin", "-loglevel", "error", "-re", "-stream_loop",
             "-1", "-i", str(path), *limit, "-c", "copy", "-f", "flv", details.url],
            check=True,
        )


def on_air_showcase(hall_id: int | None) -> Showcase:
    query = select(Showcase).join(Hall, Hall.on_air_showcase_id == Showcase.id)
    if hall_id is not None:
        query = query.where(Hall.id == hall_id)
    showcase = db.session.scalars(query.order_by(Hall.position, Hall.id).limit(1)).first()
    if showcase is None:
        raise click.ClickException("No hall has a showcase on air.")
    return showcase
