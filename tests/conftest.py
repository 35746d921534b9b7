"""Fixtures: a fresh, migrated SQLite database per test with real commits, and factories."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_socketio.test_client import SocketIOTestClient

from exhibitors import service as exhibitor_service
from exhibitors.models import Exhibitor, Project
from fair import create_app
from fair import service as fair_service
from fair.accounts import service as account_service
from fair.accounts.models import Role, User
from fair.database import utcnow
from fair.extensions import db, socketio
from fair.models import Fair, FairStatus
from livehalls import broadcast, rooms
from livehalls.schemas import HALL_MESSAGE_SCHEMAS, MESSAGE_SCHEMAS
from tests.localstripe import localstripe, localstripe_server  # noqa: F401 - fixtures

PASSWORD = "correct horse battery"


def base_config(tmp_path: Path, database_file: Path) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database_file}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "WTF_CSRF_ENABLED": True,
        "SOCKETIO_ASYNC_MODE": "threading",
        "REDIS_URL": None,
        # Tasks run as they are queued; tests/fair/test_tasks.py runs real consumers.
        "TASKS_IMMEDIATE": True,
        # Behaviour events are written as they are recorded; tests/audience batch on purpose.
        "AUDIENCE_FLUSH_SECONDS": 0,
    }


@pytest.fixture(autouse=True)
def own_redis_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Redis key and channel of this test (its apps, servers and consumers read
    REDIS_PREFIX) is its own: tests, and test runs, share one Redis database."""
    monkeypatch.setenv("REDIS_PREFIX", f"fair-test-{uuid.uuid4().hex}")


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the migrations once; every test starts from a copy of the result."""
    from flask_migrate import upgrade

    folder = tmp_path_factory.mktemp("template")
    database_file = folder / "template.sqlite"
    app = create_app(base_config(folder, database_file))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_file


@pytest.fixture
def app(tmp_path: Path, migrated_database: Path) -> Iterator[Flask]:
    database_file = tmp_path / "fair.sqlite"
    shutil.copy(migrated_database, database_file)
    app = create_app(base_config(tmp_path, database_file))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


_counter = itertools.count(1)


@pytest.fixture
def make_user(app: Flask) -> Callable[..., User]:
    def make(role: Role = Role.buyer, *, province: str = "CN-SC", email: str | None = None,
             organisation: str | None = None, verified: bool = True) -> User:
        """A user; a buyer's organisation is verified unless told otherwise, as the organisers
        would have done (tests/deals/test_verification.py goes through their API)."""
        number = next(_counter)
        if role is Role.organiser:
            return account_service.create_organiser(
                email=email or f"organiser{number}@example.com", password=PASSWORD
            )
        user = account_service.register_user(
            email=email or f"{role.value}{number}@example.com",
            password=PASSWORD,
            name=f"{role.value} {number}",
            role=role,
            organisation_name=organisation or f"成都文化馆{number}",
            province=province,
            phone="028-8888 0000" if role is Role.buyer else "",
        )
        if role is Role.buyer and verified:
            assert user.organisation is not None
            user.organisation.verified_at = utcnow()
            db.session.commit()
        return user

    return make


@pytest.fixture
def organiser(make_user: Callable[..., User]) -> User:
    return make_user(Role.organiser)


@pytest.fixture
def make_fair(organiser: User) -> Callable[..., Fair]:
    def make(*, status: FairStatus = FairStatus.open, name: str = "文旅公共服务采购大会") -> Fair:
        starts = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
        fair = fair_service.create_fair(organiser=organiser, name=name, starts_at=starts,
                                        ends_at=starts + dt.timedelta(days=3))
        if status is not FairStatus.draft:
            fair_service.update_fair(fair, organiser=organiser, changes={"status": FairStatus.open})
        if status is FairStatus.closed:
            fair_service.update_fair(fair, organiser=organiser,
                                     changes={"status": FairStatus.closed})
        return fair

    return make


@pytest.fixture
def fair(make_fair: Callable[..., Fair]) -> Fair:
    return make_fair()


@pytest.fixture
def make_exhibitor(
    make_user: Callable[..., User], organiser: User
) -> Callable[..., tuple[Exhibitor, User]]:
    """An exhibitor user and its place in the fair, approved unless told otherwise."""

    def make(fair: Fair, *, province: str = "CN-SC", approved: bool = True
             ) -> tuple[Exhibitor, User]:
        user = make_user(Role.exhibitor, province=province)
        exhibitor = exhibitor_service.apply_to_fair(fair, user=user)
        if approved:
            exhibitor_service.approve_exhibitor(exhibitor, organiser=organiser)
        return exhibitor, user

    return make


@pytest.fixture
def make_project(make_exhibitor: Callable[..., tuple[Exhibitor, User]]) -> Callable[..., Project]:
    def make(fair: Fair, *, user: User | None = None, title: str = "川剧变脸专场演出",
             category: str = "performance", price_fen: int = 12_000_000,
             summary: str = "经典川剧折子戏，适合文化馆和景区驻场。", description: str = "",
             tags: tuple[str, ...] = (), publish: bool = True, province: str = "CN-SC"
             ) -> Project:
        if user is None:
            _, user = make_exhibitor(fair, province=province)
        project = exhibitor_service.create_project(
            fair, user=user, title=title, category=category, price_fen=price_fen,
            summary=summary, description=description, tags=tags,
        )
        if publish:
            exhibitor_service.publish_project(project, user=user)
        return project

    return make


@pytest.fixture
def token_for(client: FlaskClient) -> Callable[[User], dict[str, str]]:
    """Authorization headers for a user, through the real token endpoint."""

    def headers(user: User) -> dict[str, str]:
        response = client.post("/api/v1/auth/token",
                               json={"email": user.email, "password": PASSWORD})
        assert response.status_code == 200, response.json
        return {"Authorization": f"Bearer {response.json['token']}"}

    return headers


@dataclass(frozen=True)
class Broadcast:
    event: str
    rooms: frozenset[str]
    payload: Any


class BroadcastRecorder:
    """What livehalls.broadcast sent to /live, each payload checked against its schema."""

    def __init__(self) -> None:
        self.sent: list[Broadcast] = []

    def record(self, event: str, to: str | list[str], payload: Any) -> None:
        to_rooms = frozenset([to] if isinstance(to, str) else to)
        # A fair's hall viewers get what a hall page shows; the rest get the same everywhere.
        halls_only = isinstance(payload, dict) and "fair_id" in payload and to_rooms == {
            rooms.fair_room(payload["fair_id"])}
        schemas = HALL_MESSAGE_SCHEMAS if halls_only else MESSAGE_SCHEMAS
        errors = schemas[event]().validate(payload)
        assert not errors, f"{event} payload does not match its schema: {errors}"
        self.sent.append(Broadcast(event, to_rooms, payload))

    @contextmanager
    def expect(self, count: int) -> Iterator[list[Broadcast]]:
        """Run the block, flush what it queued, and check that `count` messages left."""
        start = len(self.sent)
        captured: list[Broadcast] = []
        yield captured
        broadcast.flush()
        captured.extend(self.sent[start:])
        assert len(captured) == count, captured


@pytest.fixture
def broadcasts(app: Flask, monkeypatch: pytest.MonkeyPatch) -> BroadcastRecorder:
    """Record every /live message (Zulip's capture_send_event_calls); flushed per `expect`.

    `with broadcasts.expect(2) as sent: record_intent(...)` then checks `sent[0].event`,
    `.rooms` and `.payload`. The coalescer only flushes when told, so counts do not depend on
    timing.
    """
    recorder = BroadcastRecorder()
    monkeypatch.setattr(broadcast.coalescer(), "autoflush", False)
    # As if a client listened in every room: the coalescer skips fairs nobody here watches.
    monkeypatch.setattr(broadcast, "_listened", lambda to: True)
    emit = socketio.emit

    def recording_emit(event: str, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("namespace") == rooms.NAMESPACE:
            recorder.record(event, kwargs["to"], args[0])
        return emit(event, *args, **kwargs)

    monkeypatch.setattr(socketio, "emit", recording_emit)
    return recorder


@pytest.fixture
def live_client(app: Flask, client: FlaskClient) -> Iterator[Callable[..., SocketIOTestClient]]:
    """Connect a Socket.IO test client to /live: `live_client({"token": ...})`, or
    `live_client()` anonymous or with whatever session cookie `client` holds. They disconnect
    when the test ends, so that nothing keeps watching the test's fairs in the background."""
    connected: list[SocketIOTestClient] = []

    def connect(auth: dict[str, Any] | None = None) -> SocketIOTestClient:
        live = socketio.test_client(app, namespace=rooms.NAMESPACE, auth=auth,
                                    flask_test_client=client)
        connected.append(live)
        return live

    yield connect
    for live in connected:
        if live.is_connected(rooms.NAMESPACE):
            live.disconnect(namespace=rooms.NAMESPACE)
