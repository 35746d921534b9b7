"""Scaled out on Redis: server processes share one Socket.IO message queue, and a process that
only writes (the CLI) reaches their clients through it too."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from socketio import Client as SocketClient

from exhibitors.models import Project
from fair import tasks
from fair.accounts.models import Role, User
from fair.extensions import socketio
from fair.models import Fair
from livehalls import presence, rooms
from tests.serving import ROOT, SECRET_KEY, Server, serve

pytestmark = pytest.mark.integration

Heard = queue.Queue[tuple[str, dict[str, Any]]]


@pytest.fixture
def app(redis_app: Flask) -> Flask:
    return redis_app


@pytest.fixture
def project(fair: Fair, make_project: Callable[..., Project]) -> Project:
    return make_project(fair, title="青城山夜游")


def bearer(token_for: Callable[[User], dict[str, str]], user: User) -> str:
    return token_for(user)["Authorization"].removeprefix("Bearer ")


def open_dashboard(server: Server, token: str, fair: Fair) -> tuple[SocketClient, Heard]:
    heard: Heard = queue.Queue()
    viewer = SocketClient()
    for event in ("deals", "totals"):
        viewer.on(event, lambda payload, event=event: heard.put((event, payload)),
                  namespace=rooms.NAMESPACE)
    viewer.connect(server.url, namespaces=[rooms.NAMESPACE], auth={"token": token},
                   transports=["websocket"], wait_timeout=10)
    ack = viewer.call("join_dashboard", {"fair_id": fair.id}, namespace=rooms.NAMESPACE,
                      timeout=10)
    assert ack["ok"] is True, ack
    return viewer, heard


def deals_of(heard: Heard, project: Project, count: int, *, timeout: float) -> list[dict[str, Any]]:
    """The intents on `project` heard within `timeout` seconds, until `count` arrived."""
    found: list[dict[str, Any]] = []
    while len(found) < count:
        event, payload = heard.get(timeout=timeout)
        if event == "deals":
            found += [deal for deal in payload["deals"] if deal["project"]["id"] == project.id]
    return found


def test_an_intent_posted_to_one_server_reaches_a_dashboard_on_the_other(
    tmp_path: Path, database_file: Path, redis_url: str, fair: Fair, project: Project,
    organiser: User, make_user: Callable[..., User], token_for: Callable[[User], dict[str, str]],
) -> None:
    buyer = make_user(Role.buyer, province="CN-XZ")
    buyer_headers = token_for(buyer)
    with (
        serve(database_file, log=tmp_path / "first.log", redis_url=redis_url) as first,
        serve(database_file, log=tmp_path / "second.log", redis_url=redis_url) as second,
    ):
        viewer, heard = open_dashboard(first, bearer(token_for, organiser), fair)
        try:
            response = requests.post(
                f"{second.url}/api/v1/projects/{project.id}/deals", json={"amount": "8888.88"},
                headers={**buyer_headers, "Idempotency-Key": uuid.uuid4().hex}, timeout=10,
            )
            assert response.status_code == 201, response.text
            [deal] = deals_of(heard, project, 1, timeout=10)
        finally:
            viewer.disconnect()

    assert deal["id"] == response.json()["id"]
    assert deal["amount"] == "8888.88"
    assert deal["buyer_province"] == "CN-XZ"


def test_a_process_that_only_writes_reaches_clients_even_when_it_exits_at_once(
    tmp_path: Path, database_file: Path, redis_url: str, fair: Fair, project: Project,
    organiser: User, make_user: Callable[..., User], token_for: Callable[[User], dict[str, str]],
) -> None:
    buyer = make_user(Role.buyer)
    # Two intents at once and an immediate exit: the second would still be waiting for its
    # window, but the news crosses the queue at commit and the server coalesces it.
    writer = textwrap.dedent(f"""
        from deals import service
        from fair.accounts.models import User
        from fair.extensions import db
        from wsgi import app

        with app.app_context():
            buyer = db.session.get(User, {buyer.id})
            for key in ("first", "second"):
                service.record_intent({project.id}, buyer=buyer, amount_fen=100_000,
                                      idempotency_key=key)
    """)
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{database_file}",
           "REDIS_URL": redis_url, "REDIS_PREFIX": os.environ["REDIS_PREFIX"],
           "SECRET_KEY": SECRET_KEY,
           "MEDIA_ROOT": str(tmp_path / "media")}
    with serve(database_file, log=tmp_path / "server.log", redis_url=redis_url) as server:
        viewer, heard = open_dashboard(server, bearer(token_for, organiser), fair)
        try:
            subprocess.run([sys.executable, "-c", writer], cwd=ROOT, env=env, check=True,  # noqa: S603
                           timeout=60)
            deals = deals_of(heard, project, 2, timeout=10)
        finally:
            viewer.disconnect()

    assert [deal["amount"] for deal in deals] == ["1000.00", "1000.00"]


def test_a_deployments_redis_channel_and_keys_start_with_its_prefix(app: Flask) -> None:
    # Tests (and test runs) share one Redis database, each under a REDIS_PREFIX of its own
    # (tests/conftest.py): news, viewer counts and tasks of one never reach another.
    prefix = app.config["REDIS_PREFIX"]
    assert prefix == os.environ["REDIS_PREFIX"]
    assert socketio.server.manager.channel == f"{prefix}:socketio"
    assert presence.current().store.prefix == f"{prefix}:presence"
    assert tasks.huey.name == f"{prefix}:tasks"
