"""livehalls.health: after a Redis outage the latest totals go out again, committing nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from fair.models import Fair
from livehalls import health, rooms
from tests.conftest import BroadcastRecorder


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
        health.resend_totals(app, [*fairs, fairs[0]])
    assert commits == []
    assert sorted((message.event, message.payload["fair_id"], *sorted(message.rooms))
                  for message in sent) == sorted(
        ("totals", fair_id, room(fair_id))
        for fair_id in fairs for room in (rooms.fair_room, rooms.dashboard_room))
