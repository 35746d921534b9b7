"""Viewer figures: in one process, and shared by several processes through Redis."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis
from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from fair.extensions import db
from fair.models import Fair
from livehalls import broadcast, presence, rooms
from livehalls.models import FairAudience, Hall
from livehalls.presence import Figures, LocalStore, Presence, RedisStore
from tests.conftest import BroadcastRecorder
from tests.integration.conftest import redis_url, service_missing

__all__ = ["redis_url"]  # a fixture, for the Redis variants below


def test_a_join_counts_a_viewer_and_a_visit(hall: Hall, audience: Presence) -> None:
    assert audience.join("sid-1", hall_id=hall.id, fair_id=hall.fair_id)
    assert audience.figures(hall.id, hall.fair_id) == (Figures(1, 1, 1), Figures(1, 1, 1))


def test_joining_the_same_hall_twice_counts_once(hall: Hall, audience: Presence) -> None:
    audience.join("sid-1", hall_id=hall.id, fair_id=hall.fair_id)
    assert not audience.join("sid-1", hall_id=hall.id, fair_id=hall.fair_id)
    assert audience.figures(hall.id, hall.fair_id)[0] == Figures(1, 1, 1)


def test_a_viewers_connections_count_once_until_the_last_leaves(
    fair: Fair, hall: Hall, make_hall: Callable[..., Hall], audience: Presence
) -> None:
    other = make_hall(fair, name="二号直播厅")
    assert audience.join("tab-1", hall_id=hall.id, fair_id=fair.id, viewer="visitor:1")
    assert not audience.join("tab-2", hall_id=hall.id, fair_id=fair.id, viewer="visitor:1")
    assert audience.join("tab-2", hall_id=other.id, fair_id=fair.id, viewer="visitor:1")
    assert audience.join("phone", hall_id=hall.id, fair_id=fair.id, viewer="user:5")
    assert audience.figures(hall.id, fair.id) == (Figures(2, 2, 2), Figures(2, 3, 2))
    audience.disconnect("tab-1")
    assert audience.figures(hall.id, fair.id) == (Figures(2, 2, 2), Figures(2, 3, 2))
    audience.disconnect("tab-2")
    assert audience.figures(hall.id, fair.id) == (Figures(1, 2, 2), Figures(1, 3, 2))
    # Back soon: no new visit; back after VISIT_WINDOW: a visit.
    assert not audience.join("tab-3", hall_id=hall.id, fair_id=fair.id, viewer="visitor:1")
    audience.disconnect("tab-3")
    later = audience.clock() + presence.VISIT_WINDOW
    audience.clock = lambda: later
    assert audience.join("tab-4", hall_id=hall.id, fair_id=fair.id, viewer="visitor:1")
    assert audience.figures(hall.id, fair.id) == (Figures(2, 3, 2), Figures(2, 4, 2))


def test_a_connection_in_two_halls_is_one_viewer_of_the_fair(
    fair: Fair, hall: Hall, make_hall: Callable[..., Hall], audience: Presence
) -> None:
    other = make_hall(fair, name="二号直播厅")
    audience.join("sid-1", hall_id=hall.id, fair_id=fair.id)
    audience.join("sid-1", hall_id=other.id, fair_id=fair.id)
    audience.join("sid-2", hall_id=other.id, fair_id=fair.id)
    hall_figures, fair_figures = audience.figures(other.id, other.fair_id)
    assert hall_figures == Figures(viewers=2, visits=2, peak_viewers=2)
    assert fair_figures == Figures(viewers=2, visits=3, peak_viewers=2)


def test_leaving_and_disconnecting_keep_visits_and_peak(
    fair: Fair, hall: Hall, make_hall: Callable[..., Hall], audience: Presence
) -> None:
    other = make_hall(fair, name="二号直播厅")
    for sid in ("a", "b", "c"):
        audience.join(sid, hall_id=hall.id, fair_id=fair.id)
    audience.join("a", hall_id=other.id, fair_id=fair.id)
    audience.figures(hall.id, hall.fair_id)
    assert audience.leave("b", hall_id=hall.id)
    assert not audience.leave("b", hall_id=hall.id)
    assert sorted(audience.disconnect("a")) == sorted([hall.id, other.id])
    assert audience.disconnect("a") == []
    assert audience.figures(hall.id, hall.fair_id) == (Figures(1, 3, 3), Figures(1, 4, 3))
    assert audience.figures(other.id, other.fair_id)[0] == Figures(0, 1, 1)


def test_flushing_writes_visits_and_peaks_without_counting_them_twice(
    app: Flask, fair: Fair, hall: Hall, audience: Presence
) -> None:
    for sid in ("a", "b"):
        audience.join(sid, hall_id=hall.id, fair_id=fair.id)
    before = audience.figures(hall.id, hall.fair_id)
    audience.leave("b", hall_id=hall.id)
    audience.flush()
    db.session.expire_all()
    assert (hall.visits, hall.peak_viewers) == (2, 2)
    assert db.session.get(FairAudience, fair.id).peak_viewers == 2
    assert audience.figures(hall.id, hall.fair_id) == (Figures(1, 2, 2), Figures(1, 2, 2))
    assert before == (Figures(2, 2, 2), Figures(2, 2, 2))

    # A restarted process starts from what the database kept.
    restarted = Presence(app, LocalStore())
    assert restarted.figures(hall.id, hall.fair_id) == (Figures(0, 2, 2), Figures(0, 2, 2))


def test_halls_made_without_the_service_get_their_fair_figures_on_first_flush(
    app: Flask, fair: Fair, audience: Presence
) -> None:
    hall = Hall(fair_id=fair.id, name="演示厅")  # as the demo data makes them
    db.session.add(hall)
    db.session.commit()
    audience.join("a", hall_id=hall.id, fair_id=fair.id)
    audience.figures(hall.id, hall.fair_id)
    audience.flush()
    assert db.session.get(FairAudience, fair.id).peak_viewers == 1


def test_a_tick_sends_each_changed_hall_once(
    fair: Fair, hall: Hall, make_hall: Callable[..., Hall], audience: Presence,
    broadcasts: BroadcastRecorder,
) -> None:
    other = make_hall(fair, name="二号直播厅")
    with broadcasts.expect(0):
        for number in range(20):
            audience.join(f"sid-{number}", hall_id=hall.id, fair_id=fair.id)
        audience.join("sid-x", hall_id=other.id, fair_id=fair.id)
    with broadcasts.expect(2) as sent:
        audience.tick()
    by_hall = {message.payload["hall_id"]: message for message in sent}
    assert by_hall[hall.id].event == "viewers"
    assert by_hall[hall.id].rooms == {rooms.hall_room(hall.id), rooms.dashboard_room(fair.id)}
    assert by_hall[hall.id].payload == {
        "hall_id": hall.id, "fair_id": fair.id, "viewers": 20, "visits": 20,
        "peak_viewers": 20, "fair": {"viewers": 21, "visits": 21, "peak_viewers": 21},
    }
    with broadcasts.expect(0):
        audience.tick()


def test_a_big_hall_hears_its_figures_less_often(
    hall: Hall, audience: Presence, broadcasts: BroadcastRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presence, "VIEWERS_PER_SECOND", 2)
    for sid in ("a", "b", "c", "d"):
        audience.join(sid, hall_id=hall.id, fair_id=hall.fair_id)
    with broadcasts.expect(1):
        audience.tick()
    audience.leave("d", hall_id=hall.id)
    # Four viewers at two a second: the next figures are due two seconds later, not one.
    clock = time.monotonic()
    audience.clock = lambda: clock + 1.5
    with broadcasts.expect(0):
        audience.tick()
    audience.clock = lambda: clock + 2.1
    with broadcasts.expect(1) as sent:
        audience.tick()
    assert sent[0].payload["viewers"] == 3


@pytest.mark.parametrize(("viewers", "window"), [(0, 0.05), (100, 0.05), (2000, 0.5),
                                                 (5000, 1.0), (50_000, 1.0)])
def test_the_broadcast_window_follows_the_audience(
    fair: Fair, hall: Hall, audience: Presence, viewers: int, window: float
) -> None:
    for number in range(viewers):
        audience.join(f"sid-{number}", hall_id=hall.id, fair_id=fair.id)
    audience.tick()
    assert broadcast.coalescer().window == pytest.approx(window)



def test_open_dashboards_count_in_the_audience_until_they_disconnect(
    fair: Fair, hall: Hall, audience: Presence
) -> None:
    for number in range(1000):
        audience.watch_dashboard(f"dashboard-{number}")
    for number in range(1000):
        audience.join(f"viewer-{number}", hall_id=hall.id, fair_id=fair.id)
    audience.join("dashboard-0", hall_id=hall.id, fair_id=fair.id)  # one connection counts once
    audience.tick()
    assert broadcast.coalescer().window == pytest.approx(0.5)

    for number in range(1000):
        audience.disconnect(f"dashboard-{number}")
    audience.tick()
    assert broadcast.coalescer().window == pytest.approx(0.25)

def test_the_ticker_runs_while_there_are_viewers(app: Flask, hall: Hall,
                                                 broadcasts: BroadcastRecorder,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presence.logger, "disabled", False)
    ticking = Presence(app, LocalStore(), window=0.05, flush_every=0.1)
    ticking.join("sid-1", hall_id=hall.id, fair_id=hall.fair_id)
    deadline = time.monotonic() + 5
    while not broadcasts.sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert broadcasts.sent[0].payload["viewers"] == 1
    ticking.disconnect("sid-1")
    while ticking._running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ticking._running
    db.session.expire_all()
    assert hall.visits == 1


@pytest.fixture
def commits() -> Iterator[list[Session]]:
    """Every commit of any session while the test runs."""
    seen: list[Session] = []

    def count(session: Session) -> None:
        seen.append(session)

    event.listen(Session, "after_commit", count)
    yield seen
    event.remove(Session, "after_commit", count)


def test_resending_the_totals_after_an_outage_commits_nothing(
    app: Flask, make_fair: Callable[..., Fair], broadcasts: BroadcastRecorder,
    commits: list[Session],
) -> None:
    fairs = [make_fair(name=name).id for name in ("成都文旅采购大会", "重庆文旅采购大会")]
    commits.clear()
    # Each fair's totals go to its hall rooms (without by_exhibitor) and to its dashboard.
    with broadcasts.expect(4) as sent:
        presence.resend_totals(app, [*fairs, fairs[0]])
    assert commits == []
    assert sorted((message.event, message.payload["fair_id"], *sorted(message.rooms))
                  for message in sent) == sorted(
        ("totals", fair_id, room(fair_id))
        for fair_id in fairs for room in (rooms.fair_room, rooms.dashboard_room))


# Several processes on one Redis. Each test uses its own key prefix on the shared server.


@pytest.fixture
def shared(app: Flask, redis_url: str, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[Callable[..., Presence]]:
    """Make 'processes': Presence objects on one Redis prefix, as separate servers would."""
    # Alembic's logging setup in the session's first migration disables existing loggers.
    monkeypatch.setattr(presence.logger, "disabled", False)
    prefix = f"test:presence:{uuid.uuid4().hex[:8]}"
    made: list[Presence] = []

    def make(*, expiry: int = presence.EXPIRY, url: str = redis_url) -> Presence:
        process = Presence(app, RedisStore(url, prefix=prefix, expiry=expiry))
        process.autotick = False
        made.append(process)
        return process

    yield make
    client = redis.Redis.from_url(redis_url)
    client.delete(*client.keys(f"{prefix}:*") or [f"{prefix}:none"])


@pytest.mark.integration
def test_processes_on_one_redis_add_up(hall: Hall, shared: Callable[..., Presence]) -> None:
    first, second = shared(), shared()
    for number in range(2):
        first.join(f"a{number}", hall_id=hall.id, fair_id=hall.fair_id)
    for number in range(3):
        second.join(f"b{number}", hall_id=hall.id, fair_id=hall.fair_id)
    first.tick()
    second.tick()
    both = (Figures(5, 5, 5), Figures(5, 5, 5))
    assert first.figures(hall.id, hall.fair_id) == second.figures(hall.id, hall.fair_id) == both

    # One process writes its visits to the database; nobody counts them twice.
    first.flush()
    second.tick()
    assert second.figures(hall.id, hall.fair_id) == (Figures(5, 5, 5), Figures(5, 5, 5))


@pytest.mark.integration
def test_a_dead_process_viewers_age_out(hall: Hall, shared: Callable[..., Presence]) -> None:
    alive, dying = shared(expiry=1), shared(expiry=1)
    alive.join("a", hall_id=hall.id, fair_id=hall.fair_id)
    for number in range(4):
        dying.join(f"d{number}", hall_id=hall.id, fair_id=hall.fair_id)
    alive.tick()
    dying.tick()
    assert alive.figures(hall.id, hall.fair_id)[0].viewers == 5
    # `dying` stops its heartbeat without a goodbye, as a killed process would.
    time.sleep(1.3)
    alive.tick()
    hall_figures, _ = alive.figures(hall.id, hall.fair_id)
    assert hall_figures.viewers == 1
    assert hall_figures.peak_viewers == 5


@pytest.mark.integration
def test_figures_are_rebuilt_when_redis_lost_everything(
    hall: Hall, shared: Callable[..., Presence], redis_url: str
) -> None:
    first, second = shared(), shared()
    for number in range(3):
        first.join(f"a{number}", hall_id=hall.id, fair_id=hall.fair_id)
    first.tick()
    client = redis.Redis.from_url(redis_url)
    store = first.store
    assert isinstance(store, RedisStore)
    client.delete(*client.keys(f"{store.prefix}:*"))
    assert second.figures(hall.id, hall.fair_id)[0].viewers == 0
    first.tick()
    assert second.figures(hall.id, hall.fair_id)[0].viewers == 3


@pytest.mark.integration
def test_an_unreachable_redis_leaves_each_process_its_own_counts(
    hall: Hall, shared: Callable[..., Presence], caplog: pytest.LogCaptureFixture
) -> None:
    lonely = shared(url=f"redis://127.0.0.1:{_free_port()}/0")
    with caplog.at_level(logging.ERROR, logger="livehalls.presence"):
        lonely.join("a", hall_id=hall.id, fair_id=hall.fair_id)
        lonely.tick()
        assert lonely.figures(hall.id, hall.fair_id)[0] == Figures(1, 1, 1)
        lonely.tick()
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1


@pytest.mark.integration
def test_processes_recover_after_a_redis_restart(
    hall: Hall, shared: Callable[..., Presence], private_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = shared(url=private_redis.url), shared(url=private_redis.url)
    first.join("a", hall_id=hall.id, fair_id=hall.fair_id)
    second.join("b", hall_id=hall.id, fair_id=hall.fair_id)
    first.tick()
    second.tick()
    assert first.figures(hall.id, hall.fair_id)[0].viewers == 2

    resent: list[set[int]] = []
    monkeypatch.setattr(presence, "resend_totals",
                        lambda app, fair_ids: resent.append(fair_ids))
    private_redis.stop()
    # While Redis is down each process goes on with what it knows.
    first.join("c", hall_id=hall.id, fair_id=hall.fair_id)
    first.tick()
    assert first.figures(hall.id, hall.fair_id)[0].viewers == 2
    private_redis.start()

    # Redis came back empty; one heartbeat of each process rebuilds the shared figures.
    first.tick()
    second.tick()
    assert first.figures(hall.id, hall.fair_id)[0].viewers == 3
    assert second.figures(hall.id, hall.fair_id)[0].viewers == 3
    assert any("answers again" in record.getMessage() for record in caplog.records)
    # The process that saw the outage sends its viewers' fair totals again.
    deadline = time.monotonic() + 5
    while not resent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert resent == [{hall.fair_id}]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PrivateRedis:
    """A redis-server of the test's own: restarting the shared one would hurt everybody else."""

    binary: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server", FileNotFoundError("redis-server"))
    server = PrivateRedis(str(binary), _free_port())
    server.start()
    yield server
    server.stop()
