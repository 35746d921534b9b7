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

from audience import replay as audience_replay
from audience.models import Event
from deals import simulate
from deals import totals as deal_totals
from deals.models import Intent
from fair import demo
from fair.extensions import db
from fair.models import Fair
from fair.money import format_wan, format_yuan


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
    assert kinds["intent"] == 3_700
    assert kinds["search"] == 3_700
    assert kinds["view"] >= 3_700
    assert 0 < kinds["favourite"] < 3_700
    events = sum(kinds.values())

    again = runner.invoke(args=["fair", "simulate", "--replay", "--rate", "0"])
    assert again.exit_code == 0, again.output
    assert db.session.scalar(select(func.count()).select_from(Intent)) == 3_700
    assert deal_totals.read_totals(demo_fair.id) == totals
    assert db.session.scalar(select(func.count()).select_from(Event)) == events


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


def test_simulate_needs_an_open_fair(runner: FlaskCliRunner, app: Flask) -> None:
    missing = runner.invoke(args=["fair", "simulate"])
    assert missing.exit_code != 0
    assert "fair demo" in missing.output
    assert runner.invoke(args=["fair", "simulate", "--fair", "999"]).exit_code != 0
