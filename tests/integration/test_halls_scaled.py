"""Live halls scaled out: two gunicorn processes (gevent worker) on one Redis and one database.

A viewer on the first process hears an intent posted to the second, viewer figures add up
across both, and each process reports in its health that it listens to the Socket.IO queue.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from socketio import Client as SocketClient

from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.models import Fair
from livehalls import broadcast, rooms, service
from livehalls.models import Hall
from tests.serving import SENDS_LOGGER, Server, deals_sent, serve

pytestmark = pytest.mark.integration

Heard = queue.Queue[tuple[str, dict[str, Any]]]


@pytest.fixture
def app(redis_app: Flask) -> Flask:
    return redis_app


@pytest.fixture
def servers(tmp_path: Path, database_file: Path, redis_url: str) -> Iterator[tuple[Server, Server]]:
    with (
        serve(database_file, log=tmp_path / "first.log", redis_url=redis_url,
              debug_log=(SENDS_LOGGER, tmp_path / "first-sends.log")) as first,
        serve(database_file, log=tmp_path / "second.log", redis_url=redis_url,
              debug_log=(SENDS_LOGGER, tmp_path / "second-sends.log")) as second,
    ):
        yield first, second


@pytest.fixture
def hall(fair: Fair, organiser: User) -> Hall:
    return service.create_hall(fair, organiser=organiser, name="一号厅")


_visitors = itertools.count(1)


def watch(server: Server, hall: Hall) -> tuple[SocketClient, Heard, dict[str, Any]]:
    """A viewer in the hall: an anonymous visitor of its own (its own first-party cookie)."""
    heard: Heard = queue.Queue()
    viewer = SocketClient()
    for event in ("deals", "totals", "viewers"):
        viewer.on(event, lambda payload, event=event: heard.put((event, payload)),
                  namespace=rooms.NAMESPACE)
    viewer.connect(server.url, namespaces=[rooms.NAMESPACE], transports=["websocket"],
                   headers={"Cookie": f"fair_visitor={next(_visitors):032x}"}, wait_timeout=10)
    ack = viewer.call("join_hall", {"hall_id": hall.id}, namespace=rooms.NAMESPACE, timeout=10)
    assert ack["ok"] is True, ack
    return viewer, heard, ack


def next_event(heard: Heard, name: str, matches: Callable[[dict[str, Any]], bool], *,
               timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event, payload = heard.get(timeout=max(0.01, deadline - time.monotonic()))
        if event == name and matches(payload):
            return payload


def test_a_hall_viewer_on_one_server_hears_an_intent_posted_to_the_other(
    servers: tuple[Server, Server], hall: Hall, fair: Fair, make_project: Callable[..., Project],
    make_user: Callable[..., User], token_for: Callable[[User], dict[str, str]],
) -> None:
    first, second = servers
    project = make_project(fair, title="都江堰夜游")
    buyer_headers = token_for(make_user(Role.buyer, province="CN-XZ"))
    viewer, heard, _ = watch(first, hall)
    try:
        response = requests.post(
            f"{second.url}/api/v1/projects/{project.id}/deals",
            json={"amount": "6666.66", "hall_id": hall.id},
            headers={**buyer_headers, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
        assert response.status_code == 201, response.text
        message = next_event(heard, "deals", lambda payload: any(
            deal["project"]["title"] == project.title for deal in payload["deals"]), timeout=5)
    finally:
        viewer.disconnect()

    [deal] = [deal for deal in message["deals"] if deal["project"]["title"] == project.title]
    assert deal == {**deal, "id": response.json()["id"], "hall_id": hall.id,
                    "amount": "6666.66", "buyer_province": "CN-XZ"}


def test_viewer_figures_add_up_across_servers_and_both_listen_to_the_queue(
    servers: tuple[Server, Server], hall: Hall
) -> None:
    first, second = servers
    viewers = [watch(server, hall) for server in (first, first, second)]
    try:
        # Each process publishes its counts once a second; both answer with the sum.
        deadline = time.monotonic() + 10
        figures: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            figures = [requests.get(f"{server.url}/api/v1/halls/{hall.id}", timeout=5).json()
                       for server in servers]
            if all(each["viewers"] == 3 for each in figures):
                break
            time.sleep(0.2)
        assert [(each["viewers"], each["visits"]) for each in figures] == [(3, 3), (3, 3)]
        heard_on_second = viewers[2][1]
        assert next_event(heard_on_second, "viewers", lambda payload: payload["viewers"] == 3,
                          timeout=5)["hall_id"] == hall.id

        for server in servers:
            health = requests.get(f"{server.url}/api/v1/health", timeout=5)
            assert health.status_code == 200, health.text
            queue_health = health.json()["queue"]
            assert queue_health["subscribed"] is True
            assert queue_health["subscribers"] >= 2
            assert queue_health["processes"] >= 2

        viewers[0][0].disconnect()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = requests.get(f"{second.url}/api/v1/halls/{hall.id}", timeout=5).json()
            if now["viewers"] == 2:
                break
            time.sleep(0.2)
        assert (now["viewers"], now["visits"], now["peak_viewers"]) == (2, 3, 3)
    finally:
        for viewer, _, _ in viewers[1:]:
            viewer.disconnect()


def test_a_burst_on_both_servers_reaches_a_viewer_coalesced_once_oldest_first(
    servers: tuple[Server, Server], hall: Hall, fair: Fair, make_project: Callable[..., Project],
    make_user: Callable[..., User], token_for: Callable[[User], dict[str, str]],
) -> None:
    # Each process coalesces what every process committed for its own clients, so however
    # many processes sign, a viewer gets one `deals` message per window, not one per process.
    project = make_project(fair, title="川剧变脸")
    buyers = [token_for(make_user(Role.buyer)) for _ in servers]
    url = f"/api/v1/projects/{project.id}/deals"
    viewer, heard, _ = watch(servers[0], hall)
    posted: list[int] = []

    def sign(server: Server, headers: dict[str, str]) -> None:
        for _ in range(15):
            response = requests.post(
                server.url + url, json={"amount": "100.00"},
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
            assert response.status_code == 201, response.text
            posted.append(response.json()["id"])

    try:
        signers = [threading.Thread(target=sign, args=pair)
                   for pair in zip(servers, buyers, strict=True)]
        for signer in signers:
            signer.start()
        for signer in signers:
            signer.join()
        received: list[list[int]] = []
        seen: list[int] = []
        seqs: list[int] = []
        deadline = time.monotonic() + 20
        while sorted(seen) != sorted(posted) and time.monotonic() < deadline:
            event, payload = heard.get(timeout=max(0.01, deadline - time.monotonic()))
            if event == "deals":
                received.append([deal["id"] for deal in payload["deals"]])
                seen += received[-1]
            elif event == "totals":
                seqs.append(payload["seq"])
    finally:
        viewer.disconnect()

    assert len(posted) == 30
    assert sorted(seen) == sorted(posted)  # each once
    assert all(ids == sorted(ids) for ids in received)  # oldest first
    # Never an older snapshot after a newer one. The same one may come twice: news from the
    # other process can arrive after a flush whose totals already counted it.
    assert seqs == sorted(seqs)
    # What the viewer's server did, by its own clock (a busy viewer may read late, and then
    # several messages at once): it sent exactly the messages the viewer got, at least a
    # window apart, though both servers signed.
    sent = deals_sent(servers[0], fair.id)
    assert [ids for _, ids in sent] == received
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(sent)]
    assert min(gaps, default=broadcast.MIN_WINDOW) >= broadcast.MIN_WINDOW * 0.99, gaps
