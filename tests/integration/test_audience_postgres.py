"""The audience's write path on PostgreSQL: events go in with COPY, rollups and breakdowns with
them, in one transaction; a replay part written twice counts once."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, func, select

from audience import insights, service
from audience.models import Breakdown, Event, Kind, Reach, Rollup, SearchRollup
from fair.extensions import db
from fair.models import Fair, FairStatus
from livehalls.models import Hall
from tests.audience.test_service import _DRAW, _rows, assert_rollups_equal_the_events

pytestmark = pytest.mark.integration


def _open_fair() -> Fair:
    now = dt.datetime.now(dt.UTC)
    fair = Fair(name="2026 采购大会", starts_at=now, ends_at=now + dt.timedelta(days=3),
                status=FairStatus.open)
    db.session.add(fair)
    db.session.commit()
    return fair


def test_a_batch_goes_in_with_copy_in_one_transaction(
    postgres_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    fair = _open_fair()
    commits: list[int] = []
    copies: list[str] = []
    copy = psycopg.Cursor.copy

    def counted_copy(cursor: psycopg.Cursor, statement: str, *args: object, **kwargs: object):
        copies.append(statement)
        return copy(cursor, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", counted_copy)
    event.listen(db.engine, "commit", lambda connection: commits.append(1))
    visitor = service.Actor(user_id=None, visitor="f" * 32, province="CN-SC")
    rows = [service.event_row(Kind.hall_visit if n % 2 else Kind.visit, fair_id=fair.id,
                              actor=visitor, hall_id=None,
                              data={"terms": "川剧"} if n == 0 else None)
            for n in range(5_000)]
    assert service.write_events(rows, sources=["pg-part-1"]) == 5_000
    assert service.write_events(rows, sources=["pg-part-1"]) == 0
    assert len(commits) == 2
    assert len(copies) == 1
    assert copies[0].startswith("COPY audience_events")
    assert db.session.scalar(select(func.count()).select_from(Event)) == 5_000
    assert db.session.scalar(select(Event.data).where(Event.data.is_not(None))) == {
        "terms": "川剧"}
    assert db.session.scalar(select(func.sum(Rollup.count))) == 5_000
    assert db.session.scalar(select(func.sum(Breakdown.count)).where(
        Breakdown.dimension == "province", Breakdown.key == "CN-SC")) == 5_000
    assert insights.count_visits(fair.id) == 5_000


def test_a_beacon_batch_finds_the_fair_of_each_object_it_names_on_postgresql(
    postgres_app: Flask,
) -> None:
    fair, other = _open_fair(), _open_fair()
    halls = [Hall(fair_id=fair.id, name="主会场"), Hall(fair_id=other.id, name="分会场")]
    db.session.add_all(halls)
    db.session.commit()
    watch = {"kind": "watch", "fair_id": fair.id, "object_type": "hall", "seconds": 30}
    visitor = service.Actor(user_id=None, visitor="e" * 32, province=None)
    # Hundreds of ids in one batch: one array parameter, the unknown among them refused.
    batch = [{**watch, "object_id": halls[0].id}, {**watch, "object_id": halls[1].id},
             *({**watch, "object_id": 10_000 + n} for n in range(300))]
    checked = service.check_beacon(batch, actor=visitor)
    assert [(row["fair_id"], row["hall_id"]) for row in checked.rows] == [(fair.id, halls[0].id)]
    assert [refusal.error for refusal in checked.refused] == (
        ["object_of_another_fair"] + ["unknown_object"] * 300)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(_DRAW, max_size=12), max_size=5))
def test_the_rollups_equal_the_raw_events_on_postgresql(
    postgres_app: Flask, batches: list[list[tuple[object, ...]]]
) -> None:
    # The counters go in as one array per column on PostgreSQL (unnest), not row by row.
    fair = db.session.scalar(select(Fair)) or _open_fair()
    for table in (Event, Rollup, Breakdown, SearchRollup, Reach):
        db.session.execute(delete(table))
    db.session.commit()
    for draws in batches:
        service.write_events(_rows(fair, [101, 102], draws))
    assert_rollups_equal_the_events()
