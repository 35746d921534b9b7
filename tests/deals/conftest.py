"""Factories for the deals tests: buyers, halls, projects and intents."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from argon2 import PasswordHasher
from flask import Flask

from deals import payments
from deals import service as deal_service
from deals.models import Intent
from exhibitors.models import Project
from fair.accounts import service as account_service
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from livehalls.models import Hall
from tests.deals.stripe_fake import STRIPE_SETTINGS, FakeStripe

_keys = itertools.count(1)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests register many users; Argon2's production cost would dominate their time."""
    monkeypatch.setattr(account_service, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def make_buyer(make_user: Callable[..., User]) -> Callable[..., User]:
    def make(*, province: str = "CN-CQ") -> User:
        return make_user(Role.buyer, province=province)

    return make


@pytest.fixture
def buyer(make_buyer: Callable[..., User]) -> User:
    return make_buyer()


@pytest.fixture
def project(fair: Fair, make_project: Callable[..., Project]) -> Project:
    return make_project(fair)


@pytest.fixture
def make_hall() -> Callable[..., Hall]:
    def make(fair: Fair, *, name: str = "一号直播厅") -> Hall:
        hall = Hall(fair_id=fair.id, name=name, stream_url="")
        db.session.add(hall)
        db.session.commit()
        return hall

    return make


def new_key() -> str:
    return f"key-{next(_keys)}"


@pytest.fixture
def sign() -> Callable[..., Intent]:
    """Record an intent through the service, with a fresh idempotency key unless given one."""

    def record(project: Project, buyer: User, amount_fen: int = 1_000_000, *,
               key: str | None = None, hall_id: int | None = None, note: str = "") -> Intent:
        return deal_service.record_intent(
            project.id, buyer=buyer, amount_fen=amount_fen, idempotency_key=key or new_key(),
            hall_id=hall_id, note=note,
        )

    return record


# --- Payments through Stripe (deals.payments) --------------------------------------------------


@pytest.fixture
def fake_stripe(app: Flask) -> FakeStripe:
    """Payments switched on, with Stripe replaced by the in-memory fake."""
    app.config.update(STRIPE_SETTINGS)
    fake = FakeStripe()
    app.extensions[payments.CLIENT_KEY] = fake
    return fake
