"""Factories for the live-hall tests: halls, showcases, chatting users, and presence by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask import Flask

from exhibitors.models import Project
from fair import service as fair_service
from fair.accounts.models import Role, User
from fair.models import Fair
from livehalls import presence, service
from livehalls.models import Hall, Showcase

#: 10:00 in Beijing on the fair's first day, in UTC.
SLOT_START = dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC)


@pytest.fixture
def make_hall(organiser: User) -> Callable[..., Hall]:
    def make(fair: Fair, *, name: str = "一号直播厅", stream_url: str = "") -> Hall:
        return service.create_hall(fair, organiser=organiser, name=name, stream_url=stream_url)

    return make


@pytest.fixture
def hall(fair: Fair, make_hall: Callable[..., Hall]) -> Hall:
    return make_hall(fair)


@pytest.fixture
def project(fair: Fair, make_project: Callable[..., Project]) -> Project:
    return make_project(fair)


@pytest.fixture
def make_showcase(organiser: User, make_project: Callable[..., Project]
                  ) -> Callable[..., Showcase]:
    """A showcase of `project` (a new one by default) starting `hour` hours after SLOT_START."""

    def make(hall: Hall, *, project: Project | None = None, hour: int = 0,
             minutes: int = 60) -> Showcase:
        if project is None:
            project = make_project(fair_service.access_fair(hall.fair_id))
        starts = SLOT_START + dt.timedelta(hours=hour)
        return service.schedule_showcase(
            hall, organiser=organiser, project_id=project.id, starts_at=starts,
            ends_at=starts + dt.timedelta(minutes=minutes),
        )

    return make


@pytest.fixture
def buyer(make_user: Callable[..., User]) -> User:
    return make_user(Role.buyer, province="CN-CQ")


@pytest.fixture
def audience(app: Flask) -> presence.Presence:
    """The app's presence with its background ticker off: tests tick and flush by hand."""
    found = presence.current()
    found.autotick = False
    return found
