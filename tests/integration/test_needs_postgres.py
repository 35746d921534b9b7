"""Procurement needs on PostgreSQL: exhibitors racing for a need's last places, and a response
signed through fair_sign_intent carrying its need and response."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from argon2 import PasswordHasher
from flask import Flask
from sqlalchemy import select

from deals.models import FairTotals, Intent
from exhibitors import service as exhibitor_service
from fair import service as fair_service
from fair.accounts import service as account_service
from fair.accounts.models import Role, User
from fair.database import utcnow
from fair.errors import Conflict
from fair.extensions import db
from fair.models import Fair, FairStatus
from needs import service
from needs.models import Need, NeedResponse
from tests.conftest import PASSWORD

pytestmark = pytest.mark.integration

RACERS = 6
PLACES = 2


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(account_service, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def register(role: Role, name: str) -> User:
    """A user; a buyer's organisation verified, as the organisers would have done."""
    user = account_service.register_user(
        email=f"{name}@example.com", password=PASSWORD, name=name, role=role,
        organisation_name=f"{name} 机构", province="CN-CQ",
        phone="023-6000 0000" if role is Role.buyer else "")
    if role is Role.buyer:
        assert user.organisation is not None
        user.organisation.verified_at = utcnow()
        db.session.commit()
    return user


def stage() -> tuple[Fair, User, Need, list[tuple[int, int]]]:
    """An open fair, a need with PLACES places, and RACERS exhibitors each with a project."""
    organiser = account_service.create_organiser(email="o@example.com", password=PASSWORD)
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    fair = fair_service.create_fair(organiser=organiser, name="大会", starts_at=start,
                                    ends_at=start + dt.timedelta(days=3))
    fair_service.update_fair(fair, organiser=organiser, changes={"status": FairStatus.open})
    buyer = register(Role.buyer, "buyer")
    need = service.create_need(
        fair, buyer=buyer, title="非遗进校园", category="intangible-heritage",
        province="CN-CQ", budget_min_fen=100, budget_max_fen=10_000_000,
        deadline=utcnow() + dt.timedelta(days=3), max_responses=PLACES, publish=True)
    racers = []
    for number in range(RACERS):
        owner = register(Role.exhibitor, f"exhibitor{number}")
        stand = exhibitor_service.apply_to_fair(fair, user=owner)
        exhibitor_service.approve_exhibitor(stand, organiser=organiser)
        project = exhibitor_service.create_project(
            fair, user=owner, title=f"非遗课程{number}", category="intangible-heritage",
            price_fen=100_000)
        exhibitor_service.publish_project(project, user=owner)
        racers.append((owner.id, project.id))
    return fair, buyer, need, racers


def test_exhibitors_racing_for_the_last_places_get_exactly_the_places_there_are(
    postgres_app: Flask,
) -> None:
    _, _, need, racers = stage()
    need_id = need.id
    barrier = threading.Barrier(RACERS)
    won: list[int] = []
    refused: list[str] = []
    errors: list[BaseException] = []

    def race(owner_id: int, project_id: int) -> None:
        with postgres_app.app_context():
            owner = db.session.get(User, owner_id)
            raced = db.session.get(Need, need_id)
            assert raced is not None
            barrier.wait()
            try:
                won.append(service.respond_to_need(raced, user=owner, project_id=project_id,
                                                   price_fen=90_000).id)
            except Conflict as conflict:
                refused.append(conflict.code)
            except BaseException as error:
                errors.append(error)
            db.session.remove()

    threads = [threading.Thread(target=race, args=racer) for racer in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(won) == PLACES
    assert refused == ["need_full"] * (RACERS - PLACES)
    db.session.expire_all()
    assert db.session.get(Need, need_id).response_count == PLACES
    assert len(db.session.scalars(select(NeedResponse)).all()) == PLACES


def test_a_response_signed_on_postgresql_carries_its_need_and_response(
    postgres_app: Flask,
) -> None:
    fair, buyer, need, racers = stage()
    owner = db.session.get(User, racers[0][0])
    response = service.respond_to_need(need, user=owner, project_id=racers[0][1],
                                       price_fen=88_000)
    response_id, buyer_id, need_id, fair_id = response.id, buyer.id, need.id, fair.id
    db.session.close()  # as a fresh request: fair_sign_intent runs as its own transaction
    response = db.session.get(NeedResponse, response_id)
    buyer = db.session.get(User, buyer_id)
    intent = service.sign_response(response, buyer=buyer, idempotency_key="pg-1")
    replay = service.sign_response(response, buyer=buyer, idempotency_key="pg-1")
    assert replay.id == intent.id
    db.session.expire_all()
    stored = db.session.get(Intent, intent.id)
    assert (stored.need_id, stored.response_id, stored.amount_fen) == (
        need_id, response_id, 88_000)
    totals = db.session.get(FairTotals, fair_id)
    assert (totals.amount_fen, totals.deal_count) == (88_000, 1)
