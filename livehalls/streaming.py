"""Showcases streamed through the media server: signed push URLs, the server's publish hooks,
and the recordings that become replays (回放)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from exhibitors import media as media_files
from exhibitors.models import MediaKind, Project
from fair import permissions
from fair.accounts.models import User
from fair.database import as_utc, use_case, utcnow
from fair.errors import Conflict, Forbidden, NotFound
from fair.extensions import db
from fair.tasks import task
from livehalls import service
from livehalls.models import Hall, PushAttempt, Showcase, new_stream_secret

logger = logging.getLogger(__name__)

#: Why the fair refused a push; the organiser's pages show these codes with their text.
REFUSALS = {
    "unknown_showcase": "No showcase has this stream name.",
    "wrong_hall": "This showcase is scheduled in another hall.",
    "bad_signature": "The push URL's signature is wrong, or its key was regenerated.",
    "expired": "The push URL has expired.",
    "reused": "This push URL was used for a stream that has ended; regenerate the key.",
    "outside_slot": "The showcase is not scheduled now (its slot and grace period).",
    "already_streaming": "Another encoder is streaming this showcase now.",
}
#: A push URL whose stream ended this recently may push again (an encoder reconnecting after a
#: dropped connection); later, the same URL is refused as reused, so a leaked one is worth
#: nothing once its showcase has been streamed.
RECONNECT_WINDOW = dt.timedelta(seconds=60)
#: The stream name of a showcase: its hall and itself, public (HLS files are named after it);
#: the secret part of a push travels in the query (`e`xpiry and `s`ignature).
_NAME = re.compile(r"h(\d{1,9})s(\d{1,9})")
#: The push attempts an organiser's page lists.
ATTEMPTS_SHOWN = 20
#: ffmpeg and ffprobe get this long to remux or probe a recording.
FFMPEG_SECONDS = 600


class StreamRefused(Forbidden):
    """The media server's answer to a refused push: 403 with the reason as the code."""

    def __init__(self, reason: str) -> None:
        super().__init__(REFUSALS[reason], code=reason)


@dataclass(frozen=True)
class PushDetails:
    """What an encoder (OBS) needs: the server, the stream key, both as one URL."""

    showcase_id: int
    #: rtmp://host:1935/live, or "" when the fair has no media server.
    server: str
    #: The stream name and its signed query: OBS's "stream key".
    stream_key: str
    url: str
    expires_at: dt.datetime
    #: Where viewers read the HLS of the stream while it is live.
    hls_url: str | None


@dataclass(frozen=True)
class PushVerdict:
    accepted: bool
    reason: str
    showcase: Showcase | None


def hook_token(secret_key: str | None = None) -> str:
    """The secret path segment of the media server's hooks: only it calls them."""
    key = str(secret_key or current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"fair.stream-hooks", hashlib.sha256).hexdigest()[:32]


def check_hook_token(token: str) -> None:
    if not hmac.compare_digest(token.encode(), hook_token().encode()):
        raise NotFound(_l("没有这个回调。"))


def _expiry(showcase: Showcase, hall: Hall) -> int:
    """A push URL is good until the slot's end plus the hall's grace period."""
    ends = as_utc(showcase.ends_at) + dt.timedelta(minutes=hall.grace_minutes)
    return int(ends.timestamp())


def _signature(showcase: Showcase, expires: int) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    message = f"push:{showcase.hall_id}:{showcase.id}:{showcase.stream_secret}:{expires}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:40]


def _fingerprint(signature: str) -> str:
    return hashlib.sha256(signature.encode()).hexdigest()


def push_details(showcase: Showcase, *, user: User | None) -> PushDetails:
    """The showcase's push URL, for the organisers and the project's exhibitor."""
    permissions.require_push_viewer(user, showcase.project)
    return operator_push_details(showcase)


def operator_push_details(showcase: Showcase) -> PushDetails:
    """The push details for the operator's own tools (`flask fair demo-push`), no user asked."""
    if not showcase.stream_secret:
        raise Conflict(_l("这场展播还没有推流密钥，请重新生成。"), code="no_key")
    hall = service.access_hall(showcase.hall_id)
    expires = _expiry(showcase, hall)
    key = f"{showcase.stream_name}?e={expires}&s={_signature(showcase, expires)}"
    server = current_app.config["STREAM_PUSH_URL"]
    base = current_app.config["STREAM_HLS_URL"]
    return PushDetails(
        showcase_id=showcase.id, server=server, stream_key=key,
        url=f"{server}/{key}" if server else "",
        expires_at=dt.datetime.fromtimestamp(expires, dt.UTC),
        hls_url=f"{base}/{showcase.stream_name}.m3u8" if base else None,
    )


@use_case()
def regenerate_push_key(showcase: Showcase, *, organiser: User | None) -> Showcase:
    """A new stream key for the showcase: every push URL handed out before stops working.

    It also forgets a stream the media server never said had ended (a media server that died
    mid-stream sends no on_publish_done): otherwise every new push would be refused as a second
    one. A stream that really goes on is the media server's; the fair no longer counts it.
    """
    permissions.require_hall_manager(organiser)
    showcase.stream_secret = new_stream_secret()
    showcase.stream_signature = None
    if showcase.is_streaming:
        showcase.streaming_client = None
        showcase.stream_ended_at = utcnow()
    return showcase


def _judge(showcase: Showcase | None, hall_id: int | None, *, expires: str, signature: str,
           now: dt.datetime) -> str:
    """Why a push is refused, or "" to accept it; the checks cheapest and plainest first."""
    if showcase is None:
        return "unknown_showcase"
    if showcase.hall_id != hall_id:
        return "wrong_hall"
    if not (showcase.stream_secret and expires.isdigit() and len(expires) < 12):
        return "bad_signature"
    # As bytes: compare_digest refuses str with characters outside ASCII, which anyone may send.
    if not hmac.compare_digest(signature.encode(), _signature(showcase, int(expires)).encode()):
        return "bad_signature"
    if int(expires) < now.timestamp():
        return "expired"
    if showcase.is_streaming:
        return "already_streaming"
    ended = showcase.stream_ended_at
    if (showcase.stream_signature == _fingerprint(signature) and ended is not None
            and now - as_utc(ended) > RECONNECT_WINDOW):
        return "reused"
    hall = service.access_hall(showcase.hall_id)
    grace = dt.timedelta(minutes=hall.grace_minutes)
    if not as_utc(showcase.starts_at) - grace <= now <= as_utc(showcase.ends_at) + grace:
        return "outside_slot"
    return ""


def _find(name: str) -> tuple[Showcase | None, int | None]:
    """The showcase a stream name names, locked (PostgreSQL) so that two pushes arriving at
    once are judged one after the other; and the hall it names, if there is one."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None, None
    hall_id = int(match[1])
    # The lock first, on the row alone (its eager joins cannot be locked), then the showcase.
    db.session.execute(select(Showcase.id).where(Showcase.id == int(match[2]))
                       .with_for_update())
    showcase = db.session.get(Showcase, int(match[2]), populate_existing=True)
    if db.session.get(Hall, hall_id) is None:
        return showcase, None
    return showcase, hall_id


@use_case()
def publish_started(*, name: str, expires: str, signature: str, addr: str, client: str,
                    now: dt.datetime | None = None) -> PushVerdict:
    """The media server asks whether to accept a push (on_publish): judge it and log it.

    Accepted, the showcase is streaming and, if its hall allows it, goes on air by itself.
    Refused or not, the attempt is written down for the organisers.
    """
    now = now or utcnow()
    showcase, hall_id = _find(name)
    reason = _judge(showcase, hall_id, expires=expires, signature=signature, now=now)
    db.session.add(PushAttempt(
        hall_id=hall_id, showcase_id=None if showcase is None else showcase.id,
        stream_name=name[:100], accepted=not reason, reason=reason, addr=addr[:64],
        created_at=now,
    ))
    if reason:
        logger.warning("push refused: name=%s addr=%s reason=%s", name[:100], addr, reason)
        return PushVerdict(False, reason, showcase)
    assert showcase is not None  # noqa: S101 - _judge accepts only a showcase
    showcase.streaming_client = f"{addr}/{client}"[:100]
    showcase.stream_started_at = now
    showcase.stream_ended_at = None
    showcase.stream_signature = _fingerprint(signature)
    hall = service.access_hall(showcase.hall_id)
    if hall.auto_on_air or hall.on_air_showcase_id == showcase.id:
        # Also when already on air: viewers learn the live address.
        service.set_on_air(hall, showcase)
    logger.info("push accepted: showcase=%s addr=%s", showcase.id, addr)
    return PushVerdict(True, "", showcase)


@use_case()
def publish_done(*, name: str, addr: str, client: str, now: dt.datetime | None = None
                 ) -> Showcase | None:
    """The media server says a push ended (on_publish_done): the showcase leaves the air."""
    showcase, _ = _find(name)
    if showcase is None or showcase.streaming_client != f"{addr}/{client}"[:100]:
        return None  # not the stream the fair accepted
    showcase.streaming_client = None
    showcase.stream_ended_at = now or utcnow()
    hall = service.access_hall(showcase.hall_id)
    if hall.on_air_showcase_id == showcase.id:
        service.set_on_air(hall, None)
    return showcase


def recording_done(*, name: str, path: str) -> bool:
    """The media server finished a recording (on_record_done): make it the showcase's replay,
    in the background. Only files in STREAM_RECORDINGS are read."""
    showcase, _ = _find(name)
    folder = current_app.config["STREAM_RECORDINGS"]
    if showcase is None or not folder:
        return False
    recording = Path(path).resolve()
    if not recording.is_relative_to(Path(folder).resolve()) or not recording.is_file():
        return False
    showcase_id = showcase.id
    make_replay(showcase_id, str(recording))
    return True


@task(retries=2, retry_delay=5)
def make_replay(showcase_id: int, recording: str) -> None:
    """Remux a recording (FLV) to an MP4, store it by hash and make it the showcase's replay."""
    media_root = Path(current_app.config["MEDIA_ROOT"])
    incoming = media_root / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=incoming) as folder:
        mp4 = Path(folder) / "replay.mp4"
        remux(Path(recording), mp4)
        duration_ms = probe_duration_ms(mp4)
        with mp4.open("rb") as stream:
            stored = media_files.store_recording(stream, media_root=media_root)
    attach_replay(showcase_id, sha256=stored.sha256, size=stored.size, duration_ms=duration_ms)
    Path(recording).unlink(missing_ok=True)


def tool(name: str) -> str:
    """The path of ffmpeg or ffprobe; the replays need them beside the fair's processes."""
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (apt-get install ffmpeg)")
    return found


def remux(source: Path, target: Path) -> None:
    """Copy the streams into an MP4 whose index comes first, so that players start at once."""
    subprocess.run(  # noqa: S603 - fixed arguments, paths of our own
        [tool("ffmpeg"), "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-c", "copy",
         "-movflags", "+faststart", str(target)],
        check=True, timeout=FFMPEG_SECONDS, capture_output=True,
    )


def probe_duration_ms(path: Path) -> int:
    found = subprocess.run(  # noqa: S603 - fixed arguments, a path of our own
        [tool("ffprobe"), "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(path)],
        check=True, timeout=FFMPEG_SECONDS, capture_output=True, text=True,
    )
    return round(float(found.stdout.strip()) * 1000)


@use_case()
def attach_replay(showcase_id: int, *, sha256: str, size: int, duration_ms: int
                  ) -> Showcase | None:
    """The showcase's replay is this stored MP4 (the last recording wins)."""
    showcase = db.session.get(Showcase, showcase_id)
    if showcase is None:
        return None
    showcase.replay_sha256 = sha256
    showcase.replay_size = size
    showcase.replay_duration_ms = duration_ms
    return showcase


@use_case()
def set_replay_hidden(showcase: Showcase, *, user: User | None, hidden: bool) -> Showcase:
    """The exhibitor hides the replay of its showcase from everyone else, or shows it again."""
    permissions.require_replay_editor(user, showcase.project)
    if showcase.replay_sha256 is None:
        raise NotFound(_l("这场展播没有回放。"))
    showcase.replay_hidden = hidden
    return showcase


def access_replay(showcase_id: int, user: User | None) -> Showcase:
    """A replay the user may watch: shown, or hidden but theirs."""
    showcase = db.session.get(Showcase, showcase_id)
    if (showcase is None or showcase.replay_sha256 is None
            or not permissions.can_view_project(user, showcase.project)
            or (showcase.replay_hidden
                and not permissions.can_see_push_details(user, showcase.project))):
        raise NotFound(_l("没有这个回放。"))
    return showcase


def replay_path(showcase: Showcase) -> Path:
    assert showcase.replay_sha256 is not None  # noqa: S101 - access_replay checked it
    return media_files.file_path(Path(current_app.config["MEDIA_ROOT"]),
                                 showcase.replay_sha256, MediaKind.video)


def project_replays(project: Project, *, user: User | None) -> Sequence[Showcase]:
    """The replays of a project's showcases, newest first; hidden ones only to its editors."""
    query = select(Showcase).where(Showcase.project_id == project.id,
                                   Showcase.replay_sha256.is_not(None))
    if not permissions.can_see_push_details(user, project):
        query = query.where(Showcase.replay_hidden.is_(False))
    return db.session.scalars(query.order_by(Showcase.starts_at.desc())).all()


def recent_attempts(hall: Hall, *, organiser: User | None,
                    limit: int = ATTEMPTS_SHOWN) -> Sequence[PushAttempt]:
    """The hall's last pushes, accepted and refused, newest first (organisers)."""
    permissions.require_hall_manager(organiser)
    return db.session.scalars(
        select(PushAttempt).where(PushAttempt.hall_id == hall.id)
        .order_by(PushAttempt.id.desc()).limit(limit)
    ).all()

