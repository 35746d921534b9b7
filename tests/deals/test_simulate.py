"""`fair simulate`: buyers signing on the demo fair, and the exact replay of the reference."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from audience import insights
from audience import replay as audience_replay
from audience.models import Event
from deals import simulate
from deals import totals as deal_totals
from deals.models import Intent
from fair import demo
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from fair.money import format_wan, format_yuan
from needs.models import Need, NeedResponse, NeedStatus


@pytest.fixture
def demo_fair(app: Flask, tmp_path: Path) -> Fair:
    return demo.build_demo_fair(media_root=tmp_path / "media", posters=1, exhibitors=12,
                                projects=30).fair


@given(total_units=st.integers(1, 10**8), count=st.integers(1, 500), seed=st.integers())
def test_a_total_splits_into_positive_whole_amounts_that_add_up_exactly(
    total_units: int, count: int, seed: int
) -> None:
    if total_units < count:
        with pytest.raises(ValueError, match="at least one"):
            simulate.split_amount(total_units * 100, count, random.Random(seed))
        return
    amounts = simulate.split_amount(total_units * 100, count, random.Random(seed))
    assert len(amounts) == count
    assert sum(amounts) == total_units * 100
    assert all(amount >= 100 and amount % 100 == 0 for amount in amounts)


def test_the_replay_plan_is_the_reference_event() -> None:
    planned = simulate.plan_intents(
        count=simulate.REFERENCE_INTENTS, projects=range(1, 891), halls=[1, 2, 3],
        buyer_weights=[5, 1, 1, 1], rng=random.Random(simulate.REPLAY_SEED),
        total_fen=simulate.REFERENCE_AMOUNT_FEN, key_prefix="replay",
    )
    assert len(planned) == 3_700
    assert sum(intent.amount_fen for intent in planned) == 3_856_830_000
    assert format_wan(sum(intent.amount_fen for intent in planned)) == "3856.83"
    assert len({intent.key for intent in planned}) == 3_700
    assert max(intent.amount_fen for intent in planned) <= 100_000_000 * 100
    assert {intent.buyer for intent in planned} == {0, 1, 2, 3}
    assert None in {intent.hall_id for intent in planned}


def test_the_replay_keeps_the_plans_buyers_amounts_and_halls_and_signs_what_they_like(
    demo_fair: Fair,
) -> None:
    buyers = simulate.simulated_buyers()
    projects, halls = simulate.published_projects(demo_fair), simulate.halls_of(demo_fair)
    planned = simulate.replay_plan(demo_fair, projects=projects, halls=halls, buyers=buyers)
    plain = simulate.plan_intents(
        count=simulate.REFERENCE_INTENTS, projects=projects, halls=halls,
        buyer_weights=simulate.buyer_weights(buyers), rng=random.Random(simulate.REPLAY_SEED),
        total_fen=simulate.REFERENCE_AMOUNT_FEN,
        key_prefix=f"replay-{simulate.REPLAY_SEED}-fair-{demo_fair.id}")
    # Who signs, how much, where: the published totals, per province and per hall, as before.
    assert [(p.buyer, p.amount_fen, p.hall_id, p.key) for p in planned] == [
        (p.buyer, p.amount_fen, p.hall_id, p.key) for p in plain]
    assert sum(intent.amount_fen for intent in planned) == simulate.REFERENCE_AMOUNT_FEN
    # What: the buyer model's choice, the same every time.
    assert [intent.project_id for intent in planned] == audience_replay.signed_projects(
        demo_fair, [buyers[intent.buyer] for intent in plain],
        catalogue=audience_replay.Catalogue.of(demo_fair), seed=simulate.REPLAY_SEED)
    assert simulate.replay_plan(demo_fair, projects=projects, halls=halls,
                                buyers=buyers) == planned
    assert {intent.project_id for intent in planned} <= set(projects)
    # Part of them from responses to needs: outside the halls, once per buyer and project.
    sourced = [intent for intent in planned if intent.from_need]
    outside = [intent for intent in planned if intent.hall_id is None]
    assert 0 < len(sourced) < len(outside)
    assert all(intent.hall_id is None for intent in sourced)
    assert len({(intent.buyer, intent.project_id) for intent in sourced}) == len(sourced)


def test_simulate_signs_at_a_rate_as_buyers_of_several_provinces(
    runner: FlaskCliRunner, demo_fair: Fair
) -> None:
    result = runner.invoke(args=["fair", "simulate", "--count", "40", "--rate", "0",
                                 "--seed", "7"])
    assert result.exit_code == 0, result.output
    totals = deal_totals.read_totals(demo_fair.id)
    assert totals["deal_count"] == 40
    assert len(totals["by_buyer_province"]) >= 4
    assert f"{totals['amount']} yuan" in result.output
    again = runner.invoke(args=["fair", "simulate", "--count", "3", "--rate", "50"])
    assert again.exit_code == 0, again.output
    assert deal_totals.read_totals(demo_fair.id)["deal_count"] == 43


def test_the_replay_ends_on_3856_83_wan_and_running_it_again_changes_nothing(
    runner: FlaskCliRunner, demo_fair: Fair
) -> None:
    result = runner.invoke(args=["fair", "simulate", "--replay", "--rate", "0"])
    assert result.exit_code == 0, result.output
    totals = deal_totals.read_totals(demo_fair.id)
    assert totals["deal_count"] == 3_700
    assert totals["amount"] == "38568300.00"
    assert "3856.83 万元" in result.output
    assert len(totals["by_buyer_province"]) == len(simulate.BUYER_PROVINCES)
    # The audience came with it, through the events' write path: 1,529,069 visits, and the
    # views, searches and favourites of the buyers on their way to the 3,700 intents.
    assert totals["visits"] == 1_529_069
    assert "1,529,069 visits" in result.output
    kinds = dict(db.session.execute(
        select(Event.kind, func.count()).group_by(Event.kind)).tuples().all())
    assert kinds["visit"] + kinds["hall_visit"] == 1_529_069
    # The buyers' own hall visits on their way to an intent are among them, not added to them
    # (1,530,872 once, when they were).
    assert db.session.scalar(select(func.count()).select_from(Event).where(
        Event.kind == "hall_visit", Event.user_id.is_not(None))) > 1_000
    assert_portrait_visits(demo_fair, 1_529_069)
    assert kinds["intent"] == 3_700
    assert kinds["search"] == 3_700
    assert kinds["view"] >= 3_700
    assert 0 < kinds["favourite"] < 3_700
    events = sum(kinds.values())
    sourced = assert_signed_from_responses(demo_fair)
    assert f"{sourced} of them from responses to the buyers' needs" in result.output
    needs = db.session.scalars(select(Need).where(Need.title.contains("类项目采购"))).all()
    # Each replayed need closed once its last planned response was signed.
    assert {need.status for need in needs} == {NeedStatus.closed}
    responses = db.session.scalar(select(func.count()).select_from(NeedResponse))

    again = runner.invoke(args=["fair", "simulate", "--replay", "--rate", "0"])
    assert again.exit_code == 0, again.output
    assert db.session.scalar(select(func.count()).select_from(Intent)) == 3_700
    assert db.session.scalar(select(func.count()).select_from(Need)) == len(needs) + len(
        demo.NEEDS)
    assert db.session.scalar(select(func.count()).select_from(NeedResponse)) == responses
    assert deal_totals.read_totals(demo_fair.id) == totals
    assert db.session.scalar(select(func.count()).select_from(Event)) == events
    assert_portrait_visits(demo_fair, 1_529_069)


def assert_signed_from_responses(fair: Fair) -> int:
    """The intents the replay signed from needs carry their need and response, at the quoted
    price, by the need's buyer, for the responding project; returns how many there are."""
    signed = db.session.execute(
        select(Intent, NeedResponse, Need)
        .join(NeedResponse, NeedResponse.id == Intent.response_id)
        .join(Need, Need.id == NeedResponse.need_id)
        .where(Intent.fair_id == fair.id)).tuples().all()
    for intent, response, need in signed:
        assert intent.need_id == need.id
        assert intent.project_id == response.project_id
        assert intent.amount_fen == response.price_fen
        assert intent.buyer_id == need.buyer_id
        assert intent.hall_id is None
        assert need.budget_min_fen <= response.price_fen <= need.budget_max_fen
    return len(signed)


def assert_portrait_visits(fair: Fair, visits: int) -> None:
    """The organiser's portrait and the dashboard's 累计人次 read the same visits."""
    organiser = db.session.scalar(select(User).where(User.role == Role.organiser))
    figures = insights.fair_insights(fair, user=organiser)["visits"]
    assert figures["total"] == visits
    assert sum(day["visits"] for day in figures["by_day"]) == visits
    assert sum(hall["visits"] for hall in figures["by_hall"]) == visits
    assert insights.count_visits(fair.id) == visits


def test_a_shortened_replay_signs_the_first_intents_of_the_reference_event(
    runner: FlaskCliRunner, demo_fair: Fair
) -> None:
    result = runner.invoke(args=["fair", "simulate", "--replay", "--count", "5", "--rate", "0"])
    assert result.exit_code == 0, result.output
    assert "Signing 5 intents" in result.output
    longer = runner.invoke(args=["fair", "simulate", "--replay", "--count", "8", "--rate", "0"])
    assert longer.exit_code == 0, longer.output

    planned = simulate.plan_intents(
        count=simulate.REFERENCE_INTENTS, projects=simulate.published_projects(demo_fair),
        halls=simulate.halls_of(demo_fair), buyer_weights=[1] * 48,
        rng=random.Random(simulate.REPLAY_SEED), total_fen=simulate.REFERENCE_AMOUNT_FEN,
        key_prefix="replay")
    totals = deal_totals.read_totals(demo_fair.id)
    # The same eight intents, however the replay was cut: its keys make the first five once.
    assert totals["deal_count"] == 8
    assert totals["amount"] == format_yuan(sum(intent.amount_fen for intent in planned[:8]))
    # And the audience of those eight stretches of the curve, once.
    assert totals["visits"] == sum(
        audience_replay.visits_before(number, total_intents=simulate.REFERENCE_INTENTS)
        for number in range(1, 9))
    # Though some buyers joined a hall on their way: those visits are among the curve's.
    assert db.session.scalar(select(func.count()).select_from(Event).where(
        Event.kind == "hall_visit", Event.user_id.is_not(None))) > 0
    assert_portrait_visits(demo_fair, totals["visits"])
    buyers = simulate.simulated_buyers()
    replayed = simulate.replay_plan(demo_fair, projects=simulate.published_projects(demo_fair),
                                    halls=simulate.halls_of(demo_fair), buyers=buyers)[:8]
    assert assert_signed_from_responses(demo_fair) == sum(
        intent.from_need for intent in replayed) > 0


def test_simulate_needs_an_open_fair(runner: FlaskCliRunner, app: Flask) -> None:
    missing = runner.invoke(args=["fair", "simulate"])
    assert missing.exit_code != 0
    assert "fair demo" in missing.output
    assert runner.invoke(args=["fair", "simulate", "--fair", "999"]).exit_code != 0
