"""Signed pushes through the media server: push details, the publish hooks' verdicts, the
refusals the organisers see, on air by itself and off air when the stream stops; replays."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.database import as_utc
from fair.errors import Conflict, Forbidden, NotFound
from fair.extensions import db
from fair.models import Fair
from livehalls import service, streaming
from livehalls.models import Hall, PushAttempt, Showcase
from tests.conftest import BroadcastRecorder
from tests.exhibitors.test_media import fetch
from tests.livehalls.conftest import SLOT_START
from tests.media_tools import pattern_video

Headers = Callable[[User], dict[str, str]]
MINUTE = dt.timedelta(minutes=1)
#: Inside the slot of a showcase made by make_showcase(hall) (SLOT_START, one hour).
DURING = SLOT_START + 10 * MINUTE


@pytest.fixture
def push_app(app: Flask, tmp_path: Path) -> Flask:
    app.config.update(STREAM_PUSH_URL="rtmp://media.example:1935/live",
                      STREAM_HLS_URL="https://media.example/hls",
                      STREAM_RECORDINGS=str(tmp_path / "recordings"))
    return app


@pytest.fixture
def showcase(push_app: Flask, hall: Hall, make_showcase: Callable[..., Showcase]) -> Showcase:
    return make_showcase(hall)


def exhibitor_of(showcase: Showcase) -> User:
    """The exhibitor user whose organisation owns the showcased project."""
    return db.session.scalars(db.select(User).where(
        User.organisation_id == showcase.project.exhibitor.organisation_id)).one()


def key_parts(details: streaming.PushDetails) -> tuple[str, str, str]:
    """The stream name, expiry and signature of a push's stream key."""
    name, query = details.stream_key.split("?", 1)
    args = parse_qs(query)
    return name, args["e"][0], args["s"][0]


def push(details: streaming.PushDetails, *, now: dt.datetime = DURING, client: str = "7",
         **changes: str) -> streaming.PushVerdict:
    name, expires, signature = key_parts(details)
    parts = {"name": name, "expires": expires, "signature": signature, **changes}
    return streaming.publish_started(addr="10.0.0.5", client=client, now=now, **parts)


def attempts(hall: Hall) -> list[tuple[bool, str]]:
    return [(a.accepted, a.reason) for a in db.session.scalars(
        db.select(PushAttempt).where(PushAttempt.hall_id == hall.id).order_by(PushAttempt.id))]


def test_push_details_are_signed_and_expire_after_the_slot_and_grace(
    showcase: Showcase, hall: Hall, organiser: User
) -> None:
    details = streaming.push_details(showcase, user=organiser)
    assert details.server == "rtmp://media.example:1935/live"
    assert details.url == f"{details.server}/{details.stream_key}"
    name, expires, signature = key_parts(details)
    assert name == f"h{hall.id}s{showcase.id}"
    assert len(signature) == 40
    assert details.expires_at == as_utc(showcase.ends_at) + 10 * MINUTE
    assert int(expires) == int(details.expires_at.timestamp())
    assert details.hls_url == f"https://media.example/hls/{name}.m3u8"
    # The exhibitor of the project sees the same details.
    assert streaming.push_details(showcase, user=exhibitor_of(showcase)) == details


def test_push_details_are_secret_to_the_organisers_and_the_exhibitor(
    showcase: Showcase, fair: Fair, make_user: Callable[..., User],
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    _, rival = make_exhibitor(fair)
    for user in (rival, make_user(Role.buyer)):
        with pytest.raises(Forbidden):
            streaming.push_details(showcase, user=user)


def test_an_accepted_push_streams_goes_on_air_by_itself_and_is_logged(
    showcase: Showcase, hall: Hall, organiser: User, broadcasts: BroadcastRecorder
) -> None:
    details = streaming.push_details(showcase, user=organiser)
    with broadcasts.expect(1) as sent:
        verdict = push(details)
    assert (verdict.accepted, verdict.reason) == (True, "")
    assert showcase.is_streaming
    assert hall.on_air == showcase
    assert sent[0].event == "on_air"
    assert sent[0].payload["showcase"]["live_url"] == details.hls_url
    assert attempts(hall) == [(True, "")]


def test_without_auto_on_air_a_push_streams_but_waits_for_the_organiser(
    showcase: Showcase, hall: Hall, organiser: User, broadcasts: BroadcastRecorder
) -> None:
    service.change_hall(hall, organiser=organiser, auto_on_air=False)
    with broadcasts.expect(0):
        assert push(streaming.push_details(showcase, user=organiser)).accepted
    assert showcase.is_streaming
    assert hall.on_air is None


def test_the_stream_ending_takes_the_showcase_off_air(
    showcase: Showcase, hall: Hall, organiser: User, broadcasts: BroadcastRecorder
) -> None:
    push(streaming.push_details(showcase, user=organiser))
    name = showcase.stream_name
    with broadcasts.expect(0):  # not the client that was accepted: nothing changes
        assert streaming.publish_done(name=name, addr="10.0.0.5", client="8") is None
    with broadcasts.expect(1) as sent:
        streaming.publish_done(name=name, addr="10.0.0.5", client="7")
    assert hall.on_air is None
    assert not showcase.is_streaming
    assert sent[0].payload == {"hall_id": hall.id, "showcase": None}


def test_a_push_within_the_grace_period_is_accepted(
    showcase: Showcase, hall: Hall, organiser: User
) -> None:
    service.change_hall(hall, organiser=organiser, grace_minutes=30)
    details = streaming.push_details(showcase, user=organiser)
    assert push(details, now=SLOT_START - 25 * MINUTE).accepted


def _regenerated(showcase: Showcase, organiser: User) -> dict[str, str]:
    old = streaming.push_details(showcase, user=organiser)
    streaming.regenerate_push_key(showcase, organiser=organiser)
    assert streaming.push_details(showcase, user=organiser).stream_key != old.stream_key
    return {"signature": key_parts(old)[2]}


REFUSED: list[tuple[str, Callable[..., dict[str, str]], str]] = [
    ("tampered signature", lambda s, o, h, n: {"signature": "0" * 40}, "bad_signature"),
    ("signature not in ASCII", lambda s, o, h, n: {"signature": "签名" * 20}, "bad_signature"),
    ("no signature", lambda s, o, h, n: {"signature": ""}, "bad_signature"),
    ("changed expiry", lambda s, o, h, n: {"expires": "9999999999"}, "bad_signature"),
    ("key regenerated", lambda s, o, h, n: _regenerated(s, o), "bad_signature"),
    ("unknown name", lambda s, o, h, n: {"name": "h1s999999"}, "unknown_showcase"),
    ("malformed name", lambda s, o, h, n: {"name": "../../etc"}, "unknown_showcase"),
    ("another hall", lambda s, o, h, n: {"name": f"h{n.id}s{s.id}"}, "wrong_hall"),
]


@pytest.mark.parametrize(("case", "change", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_bad_push_is_refused_logged_and_changes_nothing(
    showcase: Showcase, hall: Hall, organiser: User, fair: Fair,
    make_hall: Callable[..., Hall], broadcasts: BroadcastRecorder,
    case: str, change: Callable[..., dict[str, str]], reason: str,
) -> None:
    other = make_hall(fair, name="二号直播厅")
    details = streaming.push_details(showcase, user=organiser)
    changes = change(showcase, organiser, hall, other)
    with broadcasts.expect(0):
        verdict = push(details, **changes)
    assert (verdict.accepted, verdict.reason) == (False, reason)
    assert not showcase.is_streaming
    assert hall.on_air is None
    logged = db.session.scalars(db.select(PushAttempt).order_by(PushAttempt.id.desc())).first()
    assert (logged.accepted, logged.reason) == (False, reason)


def test_an_expired_push_url_is_refused(showcase: Showcase, hall: Hall, organiser: User) -> None:
    details = streaming.push_details(showcase, user=organiser)
    verdict = push(details, now=details.expires_at + dt.timedelta(seconds=1))
    assert verdict.reason == "expired"
    assert attempts(hall) == [(False, "expired")]


def test_a_push_long_before_the_slot_is_refused(
    showcase: Showcase, hall: Hall, organiser: User
) -> None:
    details = streaming.push_details(showcase, user=organiser)
    assert push(details, now=SLOT_START - 11 * MINUTE).reason == "outside_slot"
    assert push(details, now=SLOT_START - 9 * MINUTE).accepted  # within the 10-minute grace


def test_a_second_simultaneous_push_is_refused(
    showcase: Showcase, hall: Hall, organiser: User
) -> None:
    details = streaming.push_details(showcase, user=organiser)
    assert push(details, client="1").accepted
    assert push(details, client="2").reason == "already_streaming"
    assert showcase.streaming_client == "10.0.0.5/1"
    assert attempts(hall) == [(True, ""), (False, "already_streaming")]


def test_a_used_push_url_reconnects_at_once_but_is_refused_as_reused_later(
    showcase: Showcase, hall: Hall, organiser: User
) -> None:
    details = streaming.push_details(showcase, user=organiser)
    assert push(details, now=DURING).accepted
    streaming.publish_done(name=showcase.stream_name, addr="10.0.0.5", client="7",
                           now=DURING + MINUTE)
    assert push(details, now=DURING + MINUTE + dt.timedelta(seconds=20), client="9").accepted
    streaming.publish_done(name=showcase.stream_name, addr="10.0.0.5", client="9",
                           now=DURING + 2 * MINUTE)
    assert push(details, now=DURING + 4 * MINUTE).reason == "reused"
    # A regenerated key gives a fresh URL.
    streaming.regenerate_push_key(showcase, organiser=organiser)
    assert push(streaming.push_details(showcase, user=organiser), now=DURING + 5 * MINUTE,
                client="10").accepted


def test_regenerating_the_key_forgets_a_stream_whose_end_never_came(
    showcase: Showcase, hall: Hall, organiser: User
) -> None:
    """A media server that died mid-stream never says the stream ended."""
    assert push(streaming.push_details(showcase, user=organiser), client="1").accepted
    streaming.regenerate_push_key(showcase, organiser=organiser)
    assert not showcase.is_streaming
    assert push(streaming.push_details(showcase, user=organiser), client="2").accepted


def test_only_organisers_regenerate_keys_and_see_the_pushes(
    showcase: Showcase, hall: Hall, organiser: User
) -> None:
    exhibitor = exhibitor_of(showcase)
    with pytest.raises(Forbidden):
        streaming.regenerate_push_key(showcase, organiser=exhibitor)
    with pytest.raises(Forbidden):
        streaming.recent_attempts(hall, organiser=exhibitor)
    push(streaming.push_details(showcase, user=organiser), signature="x")
    assert [a.reason for a in streaming.recent_attempts(hall, organiser=organiser)] == [
        "bad_signature"]


# --- the hooks over HTTP, as nginx-rtmp calls them ------------------------------------------


@pytest.fixture
def now_showcase(push_app: Flask, hall: Hall, organiser: User,
                 make_project: Callable[..., Project], fair: Fair) -> Showcase:
    """A showcase whose slot is now, for the hooks, which judge by the clock."""
    now = dt.datetime.now(dt.UTC)
    return service.schedule_showcase(hall, organiser=organiser,
                                     project_id=make_project(fair).id,
                                     starts_at=now - 5 * MINUTE, ends_at=now + 30 * MINUTE)


def hook(client: FlaskClient, what: str, form: dict[str, str], token: str | None = None
         ) -> TestResponse:
    token = token or streaming.hook_token()
    return client.post(f"/api/v1/stream-hooks/{token}/{what}", data=form)


def publish_form(details: streaming.PushDetails, **changes: str) -> dict[str, str]:
    name, expires, signature = key_parts(details)
    # What nginx-rtmp posts: its session's fields, the call, then the push URL's query.
    return {"app": "live", "flashver": "FMLE/3.0", "tcurl": "rtmp://127.0.0.1/live",
            "addr": "127.0.0.1", "clientid": "42", "call": "publish", "name": name,
            "type": "live", "e": expires, "s": signature, **changes}


def test_the_publish_hook_accepts_with_2xx_and_refuses_with_403(
    client: FlaskClient, now_showcase: Showcase, hall: Hall, organiser: User, token_for: Headers
) -> None:
    details = streaming.push_details(now_showcase, user=organiser)
    refused = hook(client, "publish", publish_form(details, s="f" * 40))
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "bad_signature"
    accepted = hook(client, "publish", publish_form(details))
    assert accepted.status_code == 204
    second = hook(client, "publish", publish_form(details, clientid="43"))
    assert (second.status_code, second.json["error"]["code"]) == (403, "already_streaming")
    shown = client.get(f"/api/v1/halls/{hall.id}").json["on_air"]
    assert shown["id"] == now_showcase.id
    assert shown["live_url"] == details.hls_url
    pushes = client.get(f"/api/v1/halls/{hall.id}/pushes", headers=token_for(organiser)).json
    assert [(p["accepted"], p["reason"]) for p in pushes] == [
        (False, "already_streaming"), (True, ""), (False, "bad_signature")]
    done = hook(client, "publish-done", {**publish_form(details), "call": "publish_done"})
    assert done.status_code == 204
    assert client.get(f"/api/v1/halls/{hall.id}").json["on_air"] is None


def test_the_hooks_need_their_token(client: FlaskClient, now_showcase: Showcase,
                                    organiser: User) -> None:
    details = streaming.push_details(now_showcase, user=organiser)
    assert hook(client, "publish", publish_form(details), token="0" * 32).status_code == 404
    assert hook(client, "publish", publish_form(details), token="令牌").status_code == 404
    assert not now_showcase.is_streaming
    assert hook(client, "publish", {"addr": "x"}).status_code == 422  # no name: refused too


def test_push_details_and_regeneration_over_http(
    client: FlaskClient, now_showcase: Showcase, organiser: User, token_for: Headers,
    make_user: Callable[..., User],
) -> None:
    url = f"/api/v1/showcases/{now_showcase.id}/push"
    first = client.get(url, headers=token_for(organiser))
    assert first.status_code == 200
    assert first.json["url"].startswith("rtmp://media.example:1935/live/h")
    assert client.get(url, headers=token_for(exhibitor_of(now_showcase))).status_code == 200
    assert client.get(url, headers=token_for(make_user(Role.buyer))).status_code == 403
    assert client.post(f"{url}/regenerate",
                       headers=token_for(exhibitor_of(now_showcase))).status_code == 403
    second = client.post(f"{url}/regenerate", headers=token_for(organiser))
    assert second.status_code == 200
    assert second.json["stream_key"] != first.json["stream_key"]
    old = hook(client, "publish", publish_form(
        streaming.PushDetails(now_showcase.id, "", first.json["stream_key"], "",
                              dt.datetime.now(dt.UTC), None)))
    assert (old.status_code, old.json["error"]["code"]) == (403, "bad_signature")


# --- replays ----------------------------------------------------------------------------------

def test_a_recording_becomes_a_replay_served_with_ranges_and_the_exhibitor_hides_it(
    push_app: Flask, client: FlaskClient, now_showcase: Showcase, organiser: User,
    token_for: Headers,
) -> None:
    recording = pattern_video(Path(push_app.config["STREAM_RECORDINGS"]) / "h1s1-1.flv",
                             seconds=2)
    answer = hook(client, "record-done", {"name": now_showcase.stream_name,
                                          "path": str(recording), "call": "record_done"})
    assert answer.status_code == 204
    db.session.expire_all()
    assert now_showcase.replay_sha256 is not None
    assert abs(now_showcase.replay_duration_ms - 2000) < 300
    stored = streaming.replay_path(now_showcase)
    assert stored.is_relative_to(Path(push_app.config["MEDIA_ROOT"]))
    assert stored.name == f"{now_showcase.replay_sha256}.mp4"
    assert not recording.exists()
    url = f"/replays/{now_showcase.id}.mp4"
    whole = fetch(client, url)
    assert (whole.status_code, whole.mimetype) == (200, "video/mp4")
    part = fetch(client, url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.data == whole.data[:100]
    listed = client.get(f"/api/v1/halls/{now_showcase.hall_id}/showcases").json
    assert listed[0]["replay_url"] == url
    # The exhibitor hides it: gone for everyone else, still there for its exhibitor.
    exhibitor = exhibitor_of(now_showcase)
    hidden = client.post(f"/api/v1/showcases/{now_showcase.id}/replay",
                         headers=token_for(exhibitor), json={"hidden": True})
    assert hidden.status_code == 200
    assert hidden.json["replay_url"] is None
    assert fetch(client, url).status_code == 404
    assert fetch(client, url, headers=token_for(exhibitor)).status_code == 200
    assert fetch(client, url, headers=token_for(organiser)).status_code == 200


def test_a_recording_outside_the_recordings_folder_is_ignored(
    push_app: Flask, client: FlaskClient, now_showcase: Showcase, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "secret.flv"
    elsewhere.write_bytes(b"FLV")
    answer = hook(client, "record-done", {"name": now_showcase.stream_name,
                                          "path": str(elsewhere)})
    assert answer.status_code == 204
    db.session.expire_all()
    assert now_showcase.replay_sha256 is None
    assert elsewhere.exists()


def test_only_its_exhibitor_hides_a_replay(
    now_showcase: Showcase, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]]
) -> None:
    _, rival = make_exhibitor(fair)
    with pytest.raises(Forbidden):
        streaming.set_replay_hidden(now_showcase, user=rival, hidden=True)
    with pytest.raises(NotFound):
        streaming.set_replay_hidden(now_showcase, user=exhibitor_of(now_showcase), hidden=True)


def test_a_streamed_showcase_cannot_be_cancelled(now_showcase: Showcase, organiser: User) -> None:
    streaming.attach_replay(now_showcase.id, sha256="a" * 64, size=10, duration_ms=1000)
    with pytest.raises(Conflict):
        service.cancel_showcase(now_showcase, organiser=organiser)
