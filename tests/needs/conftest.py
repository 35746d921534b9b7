"""Needs fixtures: verified buyers, needs, and a clock a day ahead for deadlines."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from fair.accounts.models import Role, User
from fair.database import utcnow
from fair.extensions import db
from fair.models import Fair
from needs import service
from needs.models import Need


@pytest.fixture
def verify() -> Callable[[User], User]:
    """Verify a buyer's organisation, as the organiser does."""

    def mark(user: User) -> User:
        assert user.organisation is not None
        user.organisation.verified_at = utcnow()
        db.session.commit()
        return user

    return mark


@pytest.fixture
def buyer(make_user: Callable[..., User], verify: Callable[[User], User]) -> User:
    return verify(make_user(Role.buyer, province="CN-CQ"))


def need_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "title": "非遗手工体验课进校园", "category": "intangible-heritage",
        "province": "CN-CQ", "city": "渝中区", "budget_min_fen": 5_000_000,
        "budget_max_fen": 8_000_000, "deadline": utcnow() + dt.timedelta(days=7),
        "max_responses": 3, "description": "为 200 名小学生开设**非遗**手工课<script>x</script>",
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def make_need(fair: Fair, buyer: User) -> Callable[..., Need]:
    def make(*, publish: bool = True, by: User | None = None, **overrides: Any) -> Need:
        return service.create_need(fair, buyer=by or buyer, publish=publish,
                                   **need_fields(**overrides))

    return make
