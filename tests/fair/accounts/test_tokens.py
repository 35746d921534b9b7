"""Bearer tokens: a process trusts a token it looked up for a few seconds, revocation wins."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy import event, update
from sqlalchemy.engine import Engine

from fair.accounts import service
from fair.accounts.models import ApiToken, Role, User
from fair.database import utcnow
from fair.extensions import db


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


@pytest.fixture
def token(make_user: Callable[..., User]) -> str:
    return service.issue_token(make_user(Role.buyer, province="CN-XZ", organisation="拉萨文旅"))


def fresh_request() -> None:
    db.session.remove()


def test_a_trusted_token_answers_without_a_query(token: str, statements: list[str]) -> None:
    first = service.user_for_token(token)
    assert first is not None
    fresh_request()
    statements.clear()

    again = service.user_for_token(token)

    assert again is not None
    assert (again.id, again.role, again.email) == (first.id, Role.buyer, first.email)
    assert again.organisation is not None
    assert (again.organisation.name, again.organisation.province) == ("拉萨文旅", "CN-XZ")
    assert again in db.session
    assert statements == []


def test_a_token_revoked_elsewhere_stops_working_once_the_trust_runs_out(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(service.time, "monotonic", lambda: now[0])
    assert service.user_for_token(token) is not None
    # Another process revokes it: this one only learns from the database.
    db.session.execute(update(ApiToken).values(revoked_at=utcnow()))
    db.session.commit()

    now[0] += service.TRUSTED_TOKEN_SECONDS - 0.1
    assert service.user_for_token(token) is not None
    now[0] += 0.2
    assert service.user_for_token(token) is None


def test_a_token_revoked_here_stops_working_at_once(token: str) -> None:
    assert service.user_for_token(token) is not None
    service.revoke_token(token)
    assert service.user_for_token(token) is None
