"""fair.database: a use case's transaction, and what runs after its commit (real commits)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from fair import database as fair_database
from fair.database import after_commit, after_commit_batched, use_case
from fair.errors import Conflict
from fair.extensions import db
from fair.models import Fair


def write(ran: list[Any], name: str) -> None:
    """Touch the database (so a transaction is open), then queue an action."""
    db.session.execute(select(1))
    after_commit(lambda: ran.append(name))


def fair_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Fair)) or 0


# --- after_commit --------------------------------------------------------------------------


def test_an_action_runs_after_the_commit_not_before(app: Flask) -> None:
    ran: list[str] = []
    write(ran, "sent")
    assert ran == []
    db.session.commit()
    assert ran == ["sent"]
    db.session.execute(select(1))
    db.session.commit()
    assert ran == ["sent"]  # once


def test_an_action_sees_what_was_committed(app: Flask) -> None:
    seen: list[int] = []

    @use_case()
    def create() -> None:
        db.session.add(Fair(name="成渝文旅采购大会", starts_at=fair_database.utcnow(),
                            ends_at=fair_database.utcnow()))
        db.session.flush()
        # It runs in a session of its own, as the committed data stands.
        after_commit(lambda: seen.append(_count_in_own_context(app)))

    before = fair_count()
    create()
    assert seen == [before + 1]


def _count_in_own_context(app: Flask) -> int:
    with app.app_context():
        return fair_count()


def test_a_rollback_drops_the_actions_and_they_do_not_ride_on_the_next_commit(
    app: Flask,
) -> None:
    ran: list[str] = []
    write(ran, "rolled back")
    db.session.rollback()
    write(ran, "committed")
    db.session.commit()
    assert ran == ["committed"]


def test_a_failing_use_case_runs_none_of_its_actions(app: Flask) -> None:
    ran: list[str] = []

    @use_case()
    def fails() -> None:
        write(ran, "never")
        raise IntegrityError("INSERT", {}, Exception("unique"))

    with pytest.raises(IntegrityError):
        fails()
    db.session.execute(select(1))
    db.session.commit()
    assert ran == []


def test_actions_run_in_the_order_queued(app: Flask) -> None:
    ran: list[str] = []
    for name in ("first", "second", "third"):
        write(ran, name)
    db.session.commit()
    assert ran == ["first", "second", "third"]


def test_an_action_that_raises_is_logged_and_the_others_still_run(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("Redis is away")

    write(ran, "before")
    after_commit(broken)
    write(ran, "after")
    db.session.commit()  # committed, and the commit does not raise
    assert ran == ["before", "after"]
    failures = [record for record in caplog.records if record.name == "fair.database"]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert "Redis is away" in str(failures[0].exc_info[1])


def test_with_nothing_to_commit_an_action_runs_at_once(app: Flask) -> None:
    ran: list[str] = []
    db.session.commit()
    assert not db.session().in_transaction()
    after_commit(lambda: ran.append("now"))
    assert ran == ["now"]


def test_with_a_change_waiting_to_be_flushed_an_action_waits_for_the_commit(
    app: Flask,
) -> None:
    ran: list[str] = []

    def create() -> Fair:
        fair = Fair(name="成渝文旅采购大会", starts_at=fair_database.utcnow(),
                    ends_at=fair_database.utcnow())
        db.session.add(fair)
        return fair

    fair = use_case(keep_loaded=True)(create)()
    fair.name = "巴蜀文旅采购大会"  # loaded, so no statement runs; the change begins a transaction
    after_commit(lambda: ran.append("after"))
    assert ran == []
    db.session.commit()
    assert ran == ["after"]


def test_a_savepoint_rolled_back_drops_only_what_was_queued_inside_it(app: Flask) -> None:
    ran: list[str] = []
    write(ran, "outside")
    savepoint = db.session.begin_nested()
    write(ran, "inside")
    savepoint.rollback()
    write(ran, "after")
    db.session.commit()
    assert ran == ["outside", "after"]


def test_a_savepoint_released_waits_for_the_outer_commit(app: Flask) -> None:
    ran: list[str] = []
    db.session.execute(select(1))
    with db.session.begin_nested():
        write(ran, "inner")
        with db.session.begin_nested():
            write(ran, "innermost")
    assert ran == []
    # Released into the outer savepoint: its rollback drops them too.
    savepoint = db.session.begin_nested()
    write(ran, "dropped")
    with db.session.begin_nested():
        write(ran, "dropped with its savepoint")
    savepoint.rollback()
    assert ran == []
    db.session.commit()
    assert ran == ["inner", "innermost"]


def test_a_session_closed_without_a_commit_runs_nothing(app: Flask) -> None:
    ran: list[str] = []
    write(ran, "closed")
    db.session.close()
    write(ran, "committed")
    db.session.commit()
    assert ran == ["committed"]


def test_batched_items_reach_their_deliverer_in_one_call_at_the_first_ones_place(
    app: Flask,
) -> None:
    calls: list[Any] = []
    db.session.execute(select(1))
    after_commit_batched(calls.append, 1)
    after_commit(lambda: calls.append("single"))
    after_commit_batched(calls.append, 2)
    db.session.commit()
    assert calls == [[1, 2], "single"]
    db.session.execute(select(1))
    after_commit_batched(calls.append, 3)
    db.session.rollback()
    db.session.execute(select(1))
    after_commit_batched(calls.append, 4)
    db.session.commit()
    assert calls == [[1, 2], "single", [4]]


def test_a_batched_item_with_nothing_to_commit_is_delivered_at_once(app: Flask) -> None:
    calls: list[Any] = []
    db.session.commit()
    after_commit_batched(calls.append, 1)
    assert calls == [[1]]


# --- use_case ------------------------------------------------------------------------------


class Deadlock(Exception):
    sqlstate = "40P01"


class SerializationFailure(Exception):
    sqlstate = "40001"


def failing(*errors: Exception) -> tuple[list[int], Any]:
    """A use case that writes a fair and fails with each error in turn, then succeeds."""
    attempts: list[int] = []
    pending = iter(errors)

    def work() -> int:
        attempts.append(1)
        fair = Fair(name=f"第{len(attempts)}次", starts_at=fair_database.utcnow(),
                    ends_at=fair_database.utcnow())
        db.session.add(fair)
        db.session.flush()
        error = next(pending, None)
        if error is not None:
            raise error
        return fair.id

    return attempts, work


@pytest.mark.parametrize("cause", [Deadlock(), SerializationFailure()],
                         ids=["deadlock", "serialization"])
def test_a_use_case_that_may_retry_runs_again_from_scratch(
    app: Flask, cause: Exception
) -> None:
    before = fair_count()
    attempts, work = failing(OperationalError("UPDATE", {}, cause))
    fair_id = use_case(retry=True)(work)()
    assert len(attempts) == 2
    assert fair_count() == before + 1  # the first attempt was rolled back
    assert db.session.get(Fair, fair_id) is not None


def test_a_conflict_that_never_clears_answers_busy(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fair_database.time, "sleep", lambda seconds: None)
    before = fair_count()
    attempts, work = failing(*[OperationalError("UPDATE", {}, Deadlock())] * 10)
    with pytest.raises(Conflict) as refused:
        use_case(retry=True)(work)()
    assert (refused.value.code, refused.value.headers) == ("busy", {"Retry-After": "1"})
    assert len(attempts) == fair_database.ATTEMPTS
    assert fair_count() == before


def test_only_conflicts_are_retried_and_only_when_asked(app: Flask) -> None:
    attempts, work = failing(OperationalError("UPDATE", {}, Exception("disk full")))
    with pytest.raises(OperationalError):
        use_case(retry=True)(work)()
    assert len(attempts) == 1

    attempts, work = failing(OperationalError("UPDATE", {}, Deadlock()))
    with pytest.raises(OperationalError):
        use_case()(work)()
    assert len(attempts) == 1


def test_keep_loaded_keeps_what_the_use_case_wrote_through_its_commit(
    app: Flask, organiser: Any
) -> None:
    def rename(name: str) -> Any:
        organiser.name = name
        return organiser

    kept = use_case(keep_loaded=True)(rename)("保留")
    assert "name" in kept.__dict__  # not expired: reading it loads nothing
    assert db.session().expire_on_commit is True  # as it was, for the next use case
    expired = use_case()(rename)("过期")
    assert "name" not in expired.__dict__


def test_keep_loaded_restores_expiring_when_the_use_case_fails(app: Flask) -> None:
    @use_case(keep_loaded=True, retry=True)
    def fails() -> None:
        raise Conflict("no")

    with pytest.raises(Conflict):
        fails()
    assert db.session().expire_on_commit is True

