"""Live halls on PostgreSQL: the database itself refuses overlapping showcases in one hall."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask

from exhibitors.models import Project
from fair.accounts.models import User
from fair.errors import Conflict
from fair.extensions import db
from fair.models import Fair
from livehalls import service
from livehalls.models import Showcase

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def app(postgres_app: Flask) -> Flask:
    """The factories of tests/conftest.py (fair, make_project...) write to PostgreSQL here."""
    return postgres_app


def test_overlapping_showcases_are_refused_by_the_service_and_the_database(
    fair: Fair, organiser: User, make_project: Callable[..., Project]
) -> None:
    project = make_project(fair)
    hall = service.create_hall(fair, organiser=organiser, name="一号直播厅")
    other = service.create_hall(fair, organiser=organiser, name="二号直播厅")
    service.schedule_showcase(hall, organiser=organiser, project_id=project.id,
                              starts_at=START, ends_at=START + HOUR)

    with pytest.raises(Conflict):
        service.schedule_showcase(hall, organiser=organiser, project_id=project.id,
                                  starts_at=START + HOUR / 2, ends_at=START + 2 * HOUR)

    # Around the service, as two organisers racing past its check would: the constraint holds.
    db.session.add(Showcase(hall_id=hall.id, project_id=project.id, starts_at=START + HOUR / 2,
                            ends_at=START + 2 * HOUR))
    with pytest.raises(sa.exc.IntegrityError, match="ex_showcases_no_overlap"):
        db.session.commit()
    db.session.rollback()

    # Touching slots, and the same slot in another hall, are fine.
    service.schedule_showcase(hall, organiser=organiser, project_id=project.id,
                              starts_at=START + HOUR, ends_at=START + 2 * HOUR)
    service.schedule_showcase(other, organiser=organiser, project_id=project.id,
                              starts_at=START, ends_at=START + HOUR)
    assert len(service.list_showcases(hall)) == 2


def test_two_pushes_arriving_at_once_are_judged_one_after_the_other(
    app: Flask, fair: Fair, organiser: User, make_project: Callable[..., Project]
) -> None:
    """The showcase's row is locked while a push is judged: one encoder wins, the other is
    refused as a second simultaneous push, however the two requests interleave."""
    import threading

    from livehalls import streaming
    from livehalls.models import PushAttempt

    hall = service.create_hall(fair, organiser=organiser, name="一号直播厅")
    now = dt.datetime.now(dt.UTC)
    showcase = service.schedule_showcase(hall, organiser=organiser,
                                         project_id=make_project(fair).id,
                                         starts_at=now - HOUR, ends_at=now + HOUR)
    name, query = streaming.push_details(showcase, user=organiser).stream_key.split("?")
    expires, signature = (part.split("=")[1] for part in query.split("&"))
    start = threading.Barrier(2)
    reasons: list[str] = []

    def push(client: str) -> None:
        with app.app_context():
            start.wait()
            verdict = streaming.publish_started(name=name, expires=expires, signature=signature,
                                                addr="10.0.0.1", client=client)
            reasons.append(verdict.reason)
            db.session.remove()

    threads = [threading.Thread(target=push, args=(str(n),)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(reasons) == ["", "already_streaming"]
    db.session.expire_all()
    assert sorted(a.reason for a in db.session.scalars(sa.select(PushAttempt))) == [
        "", "already_streaming"]
