"""Writing events: in batches, with rollups that always equal the raw events; retention."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, func, select

from audience import recording, replay, service
from audience.models import Breakdown, Event, Kind, Reach, Rollup, SearchRollup
from exhibitors.models import Project
from fair.extensions import db
from fair.models import Fair

VISITOR = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def commits(app: Flask) -> Iterator[list[int]]:
    """Every transaction committed on the app's engine while the test runs."""
    seen: list[int] = []

    def count(connection: Any) -> None:
        seen.append(1)

    event.listen(db.engine, "commit", count)
    yield seen
    event.remove(db.engine, "commit", count)


def test_a_thousand_events_are_written_in_one_transaction_not_a_thousand(
    app: Flask, fair: Fair, make_project: Callable[..., Project], commits: list[int]
) -> None:
    project = make_project(fair)
    buffer = recording.Buffer(app, seconds=60)  # flushed by hand below, not by the clock
    actor = service.Actor(user_id=None, visitor=VISITOR)
    for number in range(1_000):
        buffer.add([service.event_row(Kind.view if number % 2 else Kind.impression,
                                      fair_id=fair.id, actor=actor, project_id=project.id)])
    assert buffer.pending() == 1_000
    before = len(commits)
    assert buffer.flush() == 1_000
    assert len(commits) - before == 1
    assert db.session.scalar(select(func.count()).select_from(Event)) == 1_000
    counts = dict(db.session.execute(select(Rollup.kind, Rollup.count)).tuples().all())
    assert counts == {"view": 500, "impression": 500}
    assert db.session.scalar(select(Event.category).limit(1)) == project.category


def test_a_full_buffer_writes_without_waiting_for_the_clock(
    app: Flask, fair: Fair, commits: list[int]
) -> None:
    buffer = recording.Buffer(app, seconds=3_600)
    actor = service.Actor(user_id=None, visitor=VISITOR)
    rows = [service.event_row(Kind.visit, fair_id=fair.id, actor=actor)
            for _ in range(recording.FLUSH_AT)]
    buffer.add(rows)
    assert buffer.pending() == 0
    assert db.session.scalar(select(func.count()).select_from(Event)) == recording.FLUSH_AT


def test_the_buffer_writes_within_its_interval(app: Flask, fair: Fair) -> None:
    buffer = recording.Buffer(app, seconds=0.05)
    buffer.add([service.event_row(Kind.visit, fair_id=fair.id,
                                  actor=service.Actor(user_id=None, visitor=VISITOR))])
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    while buffer.pending() and dt.datetime.now(dt.UTC) < deadline:
        pass
    buffer.stop()
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(Event)) == 1


def test_a_replay_part_written_twice_counts_once(app: Flask, fair: Fair) -> None:
    actor = service.Actor(user_id=None, visitor=VISITOR)
    rows = [service.event_row(Kind.hall_visit, fair_id=fair.id, actor=actor) for _ in range(5)]
    assert service.write_events(rows, sources=["replay-part-1", "replay-part-2"]) == 5
    assert service.write_events(rows, sources=["replay-part-2"]) == 0
    assert db.session.scalar(select(func.sum(Rollup.count))) == 5


def test_raw_events_past_the_retention_period_go_and_their_rollups_stay(
    app: Flask, fair: Fair
) -> None:
    now = dt.datetime.now(dt.UTC)
    actor = service.Actor(user_id=None, visitor=VISITOR)
    service.write_events([
        service.event_row(Kind.visit, fair_id=fair.id, actor=actor,
                          at=now - dt.timedelta(days=days)) for days in (1, 179, 181, 400)])
    assert app.config["AUDIENCE_RETENTION_DAYS"] == 180
    service.expire_events()  # the nightly task, with the configured period
    left = db.session.scalars(select(Event.at)).all()
    assert len(left) == 2
    assert db.session.scalar(select(func.sum(Rollup.count))) == 4


# --- Rollups equal the raw events, whatever arrives ----------------------------------------

KINDS = [kind for kind in Kind]
PROVINCES = [None, "CN-SC", "CN-CQ"]


def _rows(fair: Fair, projects: list[int], draws: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    base = dt.datetime(2026, 12, 1, 15, 30, tzinfo=dt.UTC)  # 23:30 in Chengdu: days cross
    rows = []
    for kind, project, hall, province, minutes, user, seconds, terms, results in draws:
        actor = service.Actor(user_id=user, visitor=None if user else VISITOR,
                              province=province)
        data: dict[str, Any] | None = None
        if kind is Kind.watch:
            data = {"seconds": seconds}
        elif kind is Kind.search:
            data = {"terms": terms, "facets": {}, "results": results}
        rows.append(service.event_row(
            kind, fair_id=fair.id, actor=actor, at=base + dt.timedelta(minutes=minutes),
            project_id=projects[project] if project is not None else None, hall_id=hall,
            data=data))
    return rows


_DRAW = st.tuples(st.sampled_from(KINDS), st.one_of(st.none(), st.integers(0, 1)),
                  st.one_of(st.none(), st.integers(1, 2)), st.sampled_from(PROVINCES),
                  st.integers(0, 60), st.one_of(st.none(), st.integers(1, 3)),
                  st.integers(1, 600), st.sampled_from(["川剧", " 川剧 ", "", "熊猫"]),
                  st.integers(0, 3))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(_DRAW, max_size=12), max_size=5))
def test_the_rollups_equal_the_raw_events_after_any_batches(
    app: Flask, fair: Fair, make_project: Callable[..., Project],
    batches: list[list[tuple[Any, ...]]],
) -> None:
    projects = getattr(app, "_test_projects", None)
    if projects is None:
        projects = [make_project(fair).id, make_project(fair, category="tourism").id]
        app._test_projects = projects  # type: ignore[attr-defined]
    for table in (Event, Rollup, Breakdown, SearchRollup, Reach):
        db.session.execute(delete(table))
    db.session.commit()
    for draws in batches:
        service.write_events(_rows(fair, projects, draws))
    written = [
        {column: getattr(stored, column) for column in (
            "at", "fair_id", "kind", "project_id", "hall_id", "showcase_id", "category",
            "buyer_province", "data", "user_id", "visitor")}
        for stored in db.session.scalars(select(Event))]
    expected = Counter(service.rollup_key(row) for row in written)
    expected_seconds: Counter[tuple[Any, ...]] = Counter()
    for row in written:
        if row["kind"] == "watch":
            expected_seconds[service.rollup_key(row)] += row["data"]["seconds"]
    rollups = {
        (rollup.day, rollup.fair_id, rollup.kind, rollup.project_id, rollup.hall_id,
         rollup.showcase_id, rollup.category, rollup.province): (rollup.count, rollup.seconds)
        for rollup in db.session.scalars(select(Rollup))}
    assert rollups == {key: (count, expected_seconds[key]) for key, count in expected.items()}
    per_dimension: Counter[tuple[Any, ...]] = Counter()
    for row in written:
        day, fair_id, kind, project, hall, showcase, category, province = (
            service.rollup_key(row))
        for dimension, value in (("day", day.isoformat()), ("project", str(project)),
                                 ("hall", str(hall)), ("showcase", str(showcase)),
                                 ("category", category), ("province", province)):
            per_dimension[fair_id, kind, dimension, value] += 1
    assert {(b.fair_id, b.kind, b.dimension, b.key): b.count
            for b in db.session.scalars(select(Breakdown))} == dict(per_dimension)
    searches = Counter()
    zero = Counter()
    for row in written:
        if row["kind"] == "search":
            key = (service.day_of(row["at"]), row["fair_id"], row["data"]["terms"].strip().lower())
            searches[key] += 1
            zero[key] += row["data"]["results"] == 0
    assert {(s.day, s.fair_id, s.terms): (s.searches, s.zero_results)
            for s in db.session.scalars(select(SearchRollup))} == {
        key: (count, zero[key]) for key, count in searches.items()}
    reach = {(row["fair_id"], row["project_id"], row["kind"], row["buyer_province"] or "",
              f"u{row['user_id']}" if row["user_id"] else f"v{row['visitor']}")
             for row in written
             if row["kind"] in service.REACH_KINDS and row["project_id"]}
    assert {(r.fair_id, r.project_id, r.kind, r.province, r.actor)
            for r in db.session.scalars(select(Reach))} == reach


def test_the_replays_visits_follow_the_intents_and_add_up_to_the_reference() -> None:
    parts = [replay.visits_before(number, total_intents=3_700) for number in range(1, 3_701)]
    assert sum(parts) == replay.REFERENCE_VISITS == 1_529_069
    assert max(parts) - min(parts) <= 1  # evenly on the intents' curve
