"""The offline evaluation: a split that never lets the held-out intent (or, before its way,
the way to it) into training, the measures on a known case, the bootstrap, the CLI."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

import pytest
from flask.testing import FlaskCliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from exhibitors.models import Project
from fair.accounts.models import User
from fair.models import Fair
from recommend import evaluation, ranking

START = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
KINDS = ("view", "favourite", "share", "intent")


def at(minutes: int) -> dt.datetime:
    return START + dt.timedelta(minutes=minutes)


histories = st.lists(
    st.tuples(st.integers(0, 5), st.integers(1, 12), st.sampled_from(KINDS),
              st.integers(0, 500)),
    max_size=80,
).map(lambda rows: [ranking.Interaction(f"u{actor}", project, kind, at(minute), "CN-SC")
                    for actor, project, kind, minute in rows])


@settings(max_examples=200, deadline=None)
@given(histories, st.booleans())
def test_the_split_never_lets_the_held_out_intent_into_training(
    rows: list[ranking.Interaction], before_way: bool
) -> None:
    data = evaluation.split(rows, [], before_way=before_way)
    for actor, project in data.held_out.items():
        own = [row for row in rows if row.actor == actor]
        assert len(own) >= evaluation.MIN_INTERACTIONS
        held = max((row for row in own if row.kind == "intent" and row.project_id == project),
                   key=lambda row: row.at)
        train = [row for row in data.train if row.actor == actor]
        # Nothing of the buyer's from the held-out intent on, the intent itself above all.
        assert all(row.at < held.at for row in train)
        assert not any(row.kind == "intent" and row.project_id == project for row in train)
        assert project not in evaluation.profiles(data)[actor].signed
        if before_way:
            # Nor the way to it: nothing after the buyer's previous intent.
            earlier = [row.at for row in own if row.kind == "intent" and row.at < held.at]
            limit = max(earlier) if earlier else min(row.at for row in own)
            assert all(row.at <= limit for row in train)
    # Everybody else's doings stay whole.
    others = [row for row in rows if row.actor not in data.held_out]
    assert all(row in data.train for row in others)


def test_the_held_out_intent_is_the_most_recent_for_a_project_not_signed_before() -> None:
    rows = [
        ranking.Interaction("u1", 1, "intent", at(1)),
        ranking.Interaction("u1", 2, "intent", at(2)),
        ranking.Interaction("u1", 1, "intent", at(3)),  # signed again: not a recommendation
        ranking.Interaction("u2", 1, "view", at(1)),
        ranking.Interaction("u2", 3, "intent", at(2)),  # only two interactions: not measured
    ]
    data = evaluation.split(rows, [])
    assert data.held_out == {"u1": 2}
    assert [(row.actor, row.project_id) for row in data.train] == [("u1", 1), ("u2", 1),
                                                                   ("u2", 3)]


def test_measures_on_a_known_case() -> None:
    catalogue = [ranking.Item(id=number, category="performance" if number < 5 else "tourism",
                              title=f"项目{number}") for number in range(1, 11)]
    # Four buyers sign 1 and 2 (two interactions each: not measured); a fifth viewed 3,
    # signed 1, and then 2, which is held out: 1's neighbours lead to it.
    rows = []
    for buyer in range(4):
        rows += [ranking.Interaction(f"u{buyer}", 1, "intent", at(10 * buyer)),
                 ranking.Interaction(f"u{buyer}", 2, "intent", at(10 * buyer + 1))]
    rows += [ranking.Interaction("u9", 3, "view", at(100)),
             ranking.Interaction("u9", 1, "intent", at(101)),
             ranking.Interaction("u9", 2, "intent", at(102))]
    data = evaluation.split(rows, [])
    assert data.held_out == {"u9": 2}
    model = ranking.build(data.train, catalogue, now=at(200))
    found = evaluation.profiles(data)
    assert found["u9"].signed == {1}
    knn = evaluation.measure("knn", evaluation.item_knn, model, data, found)
    assert (knn.recall, knn.ndcg, knn.hits) == (1.0, 1.0, [1])
    assert knn.coverage == pytest.approx(9 / 10)  # all but the signed one, in a top 10
    category = evaluation.measure("category", evaluation.category_match, model, data, found)
    assert category.coverage == pytest.approx(9 / 10)
    # Before its way, the fifth buyer's history ends at its previous intent: the same here.
    before = evaluation.split(rows, [], before_way=True)
    assert before.cut["u9"] == at(101) + dt.timedelta(microseconds=1)


def test_bootstrap_interval_excludes_zero_only_for_a_real_difference() -> None:
    rng = random.Random(3)
    better = [1] * 40 + [0] * 60
    worse = [0] * 100
    low, high = evaluation.bootstrap(better, worse)
    assert 0 < low < 0.4 < high
    same = [rng.randrange(2) for _ in range(100)]
    low, high = evaluation.bootstrap(same, same)
    assert low == high == 0


def test_the_cli_evaluates_a_fair_and_refuses_one_without_buyers(
    runner: FlaskCliRunner, fair: Fair, make_project: Callable[..., Project],
    make_user: Callable[..., User],
) -> None:
    empty = runner.invoke(args=["fair", "recommendations", "--evaluate", "--fair",
                                str(fair.id), "--no-tune"])
    assert empty.exit_code != 0
    assert "nothing to measure" in empty.output
    assert runner.invoke(args=["fair", "recommendations"]).exit_code != 0
    rebuilt = runner.invoke(args=["fair", "recommendations", "--rebuild", "--fair",
                                  str(fair.id)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "Rebuilt the recommendations" in rebuilt.output
