"""The audience's write path on PostgreSQL: events go in with COPY, rollups and breakdowns with
them, in one transaction; a replay part written twice counts once."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from flask import Flask
from sqlalchemy import event, func, select

from audience import insights, service
from audience.models import Breakdown, Event, Kind, Rollup
from fair.extensions import db
from fair.models import Fair, FairStatus

pytestmark = pytest.mark.integration


def test_a_batch_goes_in_with_copy_in_one_transaction(
    postgres_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = dt.datetime.now(dt.UTC)
    fair = Fair(name="2026 采购大会", starts_at=now, ends_at=now + dt.timedelta(days=3),
                status=FairStatus.open)
    db.session.add(fair)
    db.session.commit()
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
