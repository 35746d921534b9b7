"""livehalls.broadcast: news leaves only after commit, coalesced per fair and window.

The totals each flush sends are read then, through the reader the app hands the coalescer;
here that reader returns what ``record`` last "committed" for the fair.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from fair import create_app
from fair.database import use_case
from fair.extensions import db, socketio
from livehalls import broadcast, rooms
from livehalls.broadcast import Deal, Totals
from livehalls.schemas import HALL_TOTALS_OMIT
from tests.conftest import BroadcastRecorder, base_config


def deal_payload(deal_id: int, *, hall_id: int | None = None) -> Deal:
    return {
        "id": deal_id,
        "hall_id": hall_id,
        "project": {"id": 7, "title": "川剧变脸专场演出"},
        "buyer_province": "CN-CQ",
        "amount": "10423.00",
        "created_at": "2026-12-01T09:30:00+00:00",
        "secured": False,
    }


def totals_payload(seq: int, *, fair_id: int = 1, amount: str = "10423.00") -> Totals:
    entry = {"amount": amount, "deal_count": seq}
    by = {"CN-CQ": entry} if seq else {}
    return {
        "seq": seq,
        "fair_id": fair_id,
        "amount": amount,
        "deal_count": seq,
        "project_count": 1,
        "buyer_count": 1,
        "secured_amount": "0.00",
        "secured_count": 0,
        "visits": 0,
        "by_buyer_province": by,
        "by_exhibitor_province": by,
        "by_category": by,
        "by_hall": {},
        "by_exhibitor": by,
    }


def hall_totals(totals: Totals) -> Totals:
    return {key: value for key, value in totals.items() if key not in HALL_TOTALS_OMIT}


#: The totals "in the database": each fair's seq, as the reader below reads it.
KEPT: dict[int, int] = {}
READS: list[int] = []


@pytest.fixture(autouse=True)
def totals_reader(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    KEPT.clear()
    READS.clear()

    def read(fair_id: int) -> Totals:
        READS.append(fair_id)
        return totals_payload(KEPT.get(fair_id, 0), fair_id=fair_id)

    found = broadcast.coalescer()
    monkeypatch.setattr(found, "readers", dataclasses.replace(found.required_readers(),
                                                              totals=read))


@pytest.fixture
def someone_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if a client of this process were in every room (the `broadcasts` recorder does it)."""
    monkeypatch.setattr(broadcast, "_listened", lambda to: True)


@use_case()
def record(fair_id: int, deal_id: int, seq: int) -> None:
    """Stand in for deals.service: touch the database, then tell the broadcaster."""
    db.session.execute(select(1))
    KEPT[fair_id] = seq
    broadcast.deal_recorded(fair_id, deal=deal_payload(deal_id))


class Refused(Exception):
    pass


@use_case()
def record_then_fail(fair_id: int) -> None:
    db.session.execute(select(1))
    broadcast.deal_recorded(fair_id, deal=deal_payload(1))
    raise Refused


def test_deal_recorded_sends_deals_then_totals_to_the_fair_and_dashboard_rooms(
    broadcasts: BroadcastRecorder,
) -> None:
    with broadcasts.expect(3) as sent:
        record(1, 41, 5)

    deals, totals, totals_for_halls = sent
    assert deals.event == "deals"
    assert deals.payload == {"fair_id": 1, "deals": [deal_payload(41)]}
    assert deals.rooms == {rooms.fair_room(1), rooms.dashboard_room(1)}
    assert (totals.event, totals_for_halls.event) == ("totals", "totals")
    assert totals.payload == totals_payload(5)
    assert totals.rooms == {rooms.dashboard_room(1)}


def test_hall_rooms_get_the_totals_without_what_a_hall_page_never_shows(
    broadcasts: BroadcastRecorder,
) -> None:
    with broadcasts.expect(3) as sent:
        record(1, 41, 5)

    totals_for_halls = sent[2]
    assert totals_for_halls.rooms == {rooms.fair_room(1)}
    assert "by_exhibitor" not in totals_for_halls.payload
    assert totals_for_halls.payload == hall_totals(totals_payload(5))
    assert READS == [1]  # one read for both rooms


def test_deal_secured_sends_the_ids_then_the_totals(broadcasts: BroadcastRecorder) -> None:
    @use_case()
    def secure(*deal_ids: int) -> None:
        db.session.execute(select(1))
        KEPT[1] = KEPT.get(1, 0) + len(deal_ids)
        for deal_id in deal_ids:
            broadcast.deal_secured(1, deal_id=deal_id)

    with broadcasts.expect(3) as sent:
        secure(12)
        secure(11)

    assert [message.event for message in sent] == ["secured", "totals", "totals"]
    assert sent[0].payload == {"fair_id": 1, "deal_ids": [11, 12]}
    assert sent[0].rooms == {rooms.fair_room(1), rooms.dashboard_room(1)}
    assert sent[1].payload["seq"] == 2


def test_totals_changed_sends_only_totals(broadcasts: BroadcastRecorder) -> None:
    @use_case()
    def withdraw() -> None:
        db.session.execute(select(1))
        KEPT[1] = 6
        broadcast.totals_changed(1)

    with broadcasts.expect(2) as sent:
        withdraw()

    assert [message.event for message in sent] == ["totals", "totals"]
    assert sent[0].payload["seq"] == 6


def test_nothing_leaves_before_the_commit(broadcasts: BroadcastRecorder) -> None:
    db.session.execute(select(1))
    KEPT[1] = 1
    broadcast.deal_recorded(1, deal=deal_payload(1))
    with broadcasts.expect(0):
        pass  # queued in the open transaction: a flush finds nothing to send

    with broadcasts.expect(3):
        db.session.commit()


def test_a_rolled_back_transaction_sends_nothing(broadcasts: BroadcastRecorder) -> None:
    with broadcasts.expect(0), pytest.raises(Refused):
        record_then_fail(1)
    # The dropped news does not ride along with the next commit either.
    with broadcasts.expect(3) as sent:
        record(1, 2, 2)
    assert [deal["id"] for deal in sent[0].payload["deals"]] == [2]


def test_one_flush_carries_every_new_deal_oldest_first_and_the_totals_read_once(
    broadcasts: BroadcastRecorder,
) -> None:
    with broadcasts.expect(3) as sent:
        record(1, 11, 2)
        record(1, 10, 1)  # another process's, arriving late: the deals still go oldest first
        record(1, 12, 3)

    assert [deal["id"] for deal in sent[0].payload["deals"]] == [10, 11, 12]
    assert sent[1].payload["seq"] == 3
    assert READS == [1]


def test_the_totals_are_read_when_the_message_leaves(broadcasts: BroadcastRecorder) -> None:
    with broadcasts.expect(3) as sent:
        record(1, 41, 5)
        KEPT[1] = 9  # committed meanwhile by a process whose news has not arrived yet
    assert sent[1].payload["seq"] == 9


def test_each_fair_gets_its_own_messages_in_its_own_rooms(broadcasts: BroadcastRecorder) -> None:
    with broadcasts.expect(6) as sent:
        record(1, 10, 1)
        record(2, 20, 1)

    by_fair: dict[tuple[str, int], set[str]] = {}
    for message in sent:
        by_fair.setdefault((message.event, message.payload["fair_id"]), set()).update(
            message.rooms)
    assert by_fair[("deals", 2)] == {rooms.fair_room(2), rooms.dashboard_room(2)}
    assert by_fair[("totals", 1)] == {rooms.fair_room(1), rooms.dashboard_room(1)}


class Pacing:
    """What the coalescer did, in order: its sends ("deals"/"totals", the payload, the time)
    and its pauses between flushes; each pause lasts until the test opens the gate."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.done: list[tuple[str, Any, float]] = []
        self.gate = threading.Event()
        monkeypatch.setattr(socketio, "emit", lambda event, payload, **kwargs:
                            self.done.append((event, payload, time.monotonic())))
        monkeypatch.setattr(socketio, "sleep", self.pause)

    def pause(self, seconds: float) -> None:
        self.done.append(("pause", seconds, time.monotonic()))
        self.gate.wait(10)

    def wait(self, until: Any) -> None:
        deadline = time.monotonic() + 10
        while not until(self.done):
            assert time.monotonic() < deadline, self.done
            time.sleep(0.005)

    def deals(self) -> list[list[int]]:
        return [[deal["id"] for deal in payload["deals"]]
                for event, payload, _ in self.done if event == "deals"]


@pytest.fixture
def pacing(monkeypatch: pytest.MonkeyPatch) -> Pacing:
    return Pacing(monkeypatch)


def test_an_idle_fair_is_flushed_at_once_and_a_burst_during_the_window_as_one_message(
    app: Flask, pacing: Pacing, someone_listens: None
) -> None:
    record(1, 1, 1)
    # The first flush comes before any pause: an idle fair's deal does not wait for a window.
    pacing.wait(lambda done: done and done[-1][0] == "pause")
    # The totals go twice: to the dashboards, and to the halls without by_exhibitor.
    assert [event for event, _, _ in pacing.done] == ["deals", "totals", "totals", "pause"]
    assert pacing.done[-1][1] == broadcast.coalescer().window

    burst = 40
    for number in range(2, burst + 1):
        record(1, number, number)
    pacing.gate.set()
    pacing.wait(lambda done: [payload["seq"] for event, payload, _ in done
                              if event == "totals"][-1] == burst)
    assert pacing.deals() == [[1], list(range(2, burst + 1))]


def test_a_busy_fair_is_flushed_at_most_once_a_window(
    app: Flask, monkeypatch: pytest.MonkeyPatch, someone_listens: None
) -> None:
    # Real pauses this time; the times are the coalescer's own, at each send.
    sent: list[tuple[str, Any, float]] = []
    monkeypatch.setattr(socketio, "emit", lambda event, payload, **kwargs:
                        sent.append((event, payload, time.monotonic())))
    burst = 40
    for number in range(1, burst + 1):
        record(1, number, number)
        time.sleep(0.005)
    deadline = time.monotonic() + 10
    while not (sent and sent[-1][0] == "totals" and sent[-1][1]["seq"] == burst):
        assert time.monotonic() < deadline, sent
        time.sleep(0.02)

    deals_sent = [(at, payload) for event, payload, at in sent if event == "deals"]
    assert [deal["id"] for _, payload in deals_sent for deal in payload["deals"]] == list(
        range(1, burst + 1))
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(deals_sent)]
    window = broadcast.coalescer().window
    assert min(gaps, default=window) >= window * 0.99, gaps


def test_a_fair_nobody_here_watches_is_neither_read_nor_sent(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No client of this process is in the fair's rooms (the other processes' clients hear
    # the news from their own coalescers): a flush has nobody to tell.
    sent: list[str] = []
    monkeypatch.setattr(broadcast.coalescer(), "autoflush", False)
    monkeypatch.setattr(socketio, "emit", lambda event, *args, **kwargs: sent.append(event))
    record(1, 1, 1)
    broadcast.flush()
    assert (sent, READS) == ([], [])


def test_news_committed_while_a_message_is_on_its_way_leaves_together_in_the_next(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = broadcast.NewsRedisManager("redis://127.0.0.1:9/0",
                                         coalescer=broadcast.coalescer())
    published: list[tuple[list[int], threading.Thread]] = []
    on_its_way, arrived = threading.Event(), threading.Event()

    def emit(event: str, data: str, *, namespace: str) -> None:
        assert (event, namespace) == (broadcast.NEWS_EVENT, broadcast.NEWS_NAMESPACE)
        published.append(([deal["id"] for _, deal, _ in json.loads(data)],
                          threading.current_thread()))
        if len(published) == 1:
            on_its_way.set()
            arrived.wait(5)

    monkeypatch.setattr(socketio, "emit", emit)
    committer = threading.Thread(target=manager.publish,
                                 args=([broadcast._News(1, deal_payload(1))],))
    committer.start()
    assert on_its_way.wait(5)
    manager.publish([broadcast._News(1, deal_payload(2))])
    manager.publish([broadcast._News(2, deal_payload(3))])
    assert [ids for ids, _ in published] == [[1]]
    arrived.set()
    committer.join(5)
    deadline = time.monotonic() + 5
    while len(published) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)

    assert [ids for ids, _ in published] == [[1], [2, 3]]
    # An idle queue sends at once, from the committing thread itself; what waited goes from
    # a background task, so no request carries another's news.
    assert published[0][1] is committer
    assert published[1][1] not in (committer, threading.current_thread())


def test_a_process_gevent_did_not_patch_runs_socketio_in_threads(tmp_path: Path) -> None:
    # The CLI and the tests are not patched by gevent: the coalescer's task must still run.
    config = base_config(tmp_path, tmp_path / "unused.sqlite")
    config["SOCKETIO_ASYNC_MODE"] = None
    create_app(config)
    assert socketio.async_mode == "threading"


def test_a_fair_whose_totals_cannot_be_read_does_not_hold_up_the_others(
    broadcasts: BroadcastRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers = broadcast.coalescer().required_readers()

    def failing_for_fair_1(fair_id: int) -> Totals:
        if fair_id == 1:
            raise ConnectionError("the database is away")
        return readers.totals(fair_id)

    monkeypatch.setattr(broadcast.coalescer(), "readers",
                        dataclasses.replace(readers, totals=failing_for_fair_1))
    monkeypatch.setattr(broadcast.logger, "disabled", True)
    with broadcasts.expect(4) as sent:
        record(1, 10, 1)
        record(2, 20, 1)

    assert [(message.event, message.payload["fair_id"]) for message in sent] == [
        ("deals", 1), ("deals", 2), ("totals", 2), ("totals", 2)]


def test_an_intent_that_arrives_twice_goes_out_once(broadcasts: BroadcastRecorder) -> None:
    # From the queue and from the database, say: a later copy is not sent again.
    with broadcasts.expect(3):
        record(1, 41, 1)
    with broadcasts.expect(3) as sent:
        broadcast.coalescer().submit([broadcast._News(1, deal_payload(41))])
        record(1, 42, 2)
    assert [deal["id"] for deal in sent[0].payload["deals"]] == [42]


def test_news_crosses_the_queue_with_what_was_secured() -> None:
    news = [broadcast._News(1, deal_payload(41)), broadcast._News(1, None, secured=41),
            broadcast._News(2, None)]
    assert broadcast._decode(broadcast._encode(news)) == news


def test_joins_share_one_read_until_newer_news_leaves(broadcasts: BroadcastRecorder) -> None:
    KEPT[1] = 4
    first = broadcast.snapshot(1, hall=False)
    again = broadcast.snapshot(1, hall=True)
    assert READS == [1]  # a hall filling up does not read the totals once per viewer
    assert again[0] == hall_totals(first[0])

    with broadcasts.expect(3):
        record(1, 51, 5)
    READS.clear()
    totals, _ = broadcast.snapshot(1, hall=False)
    assert totals["seq"] == 5
    assert READS == [1]


def test_a_join_during_a_flush_reads_afresh(broadcasts: BroadcastRecorder) -> None:
    """The flush may have sent its intents before the client joined: the cached
    acknowledgement would miss them."""
    broadcast.snapshot(1, hall=False)
    found = broadcast.coalescer()
    found._sending = {1}
    READS.clear()
    broadcast.snapshot(1, hall=False)
    assert READS == [1]
