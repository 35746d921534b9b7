"""The reference event's audience, replayed beside its intents (`fair simulate --replay`):
1,529,069 online visits on the intents' curve, and what a buyer model did before each intent."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from audience import service
from audience.models import VISIT_KINDS, Kind
from exhibitors.models import Project, ProjectStatus
from fair.accounts.models import User
from fair.extensions import db
from fair.models import Fair
from fair.reference import category_name

#: The reference event's online visits (线上观展人次, docs/design.md).
REFERENCE_VISITS = 1_529_069
#: One visit in this many opens the catalogue; the others join one of the halls.
CATALOGUE_ONE_IN = 3
#: A buyer's tastes: how many categories it looks in, and how many other projects it views.
TASTES = 2
OTHER_VIEWS = (0, 1, 2, 3)
#: One intent in this many was favourited first.
FAVOURITED_ONE_IN = 3
#: How many intents' parts one transaction writes (written before the first of them).
PARTS_PER_BATCH = 10


@dataclass(frozen=True)
class Signing:
    """An intent of the replay, as the audience needs it: its buyer and its project."""

    buyer: User
    project_id: int


@dataclass(frozen=True)
class Catalogue:
    """The published projects of the fair: category and price of each, for the buyer model."""

    category: dict[int, str]
    price_fen: dict[int, int]
    by_category: dict[str, list[int]]

    @classmethod
    def of(cls, fair: Fair) -> Catalogue:
        rows = db.session.execute(
            select(Project.id, Project.category, Project.price_fen)
            .where(Project.fair_id == fair.id, Project.status == ProjectStatus.published)
            .order_by(Project.id)).all()
        by_category: dict[str, list[int]] = {}
        for project_id, category, _ in rows:
            by_category.setdefault(category, []).append(project_id)
        return cls(category={row[0]: row[1] for row in rows},
                   price_fen={row[0]: row[2] for row in rows}, by_category=by_category)


def visits_before(number: int, *, total_intents: int, visits: int = REFERENCE_VISITS) -> int:
    """How many visits come before intent `number` (1-based) and after the one before it: the
    visits follow the intents' curve, and the whole replay adds up to `visits` exactly."""
    return visits * number // total_intents - visits * (number - 1) // total_intents


def replay_parts(fair: Fair, *, numbers: Sequence[int], signings: Sequence[Signing],
                 total_intents: int, halls: Sequence[int], catalogue: Catalogue, seed: int,
                 visits: int = REFERENCE_VISITS) -> int:
    """Write what happened before the intents `numbers` (1-based) of the replay: the online
    visits of those stretches of the curve, and each buyer's searches, views and favourite
    leading to its intent.

    One batch through the write path of every event (service.write_events), each part under a
    name of its own: parts already written are left out, so replaying twice, or a longer
    replay after a shorter one, writes each part once.
    """
    names = {number: f"replay-{seed}-fair-{fair.id}-part-{number}" for number in numbers}
    done = service.imported(list(names.values()))
    rows: list[service.EventRow] = []
    for number, signing in zip(numbers, signings, strict=True):
        if names[number] in done:
            continue
        rng = random.Random(f"{seed}-{fair.id}-{number}")
        lead_up = _lead_up(fair, rng, signing=signing, catalogue=catalogue, halls=halls)
        # The buyer's own hall visit is one of the stretch's visits, not one more.
        own = sum(row["kind"] in VISIT_KINDS for row in lead_up)
        rows += _visits(fair, rng, count=visits_before(number, total_intents=total_intents,
                                                       visits=visits) - own, halls=halls)
        rows += lead_up
    wanted = [names[number] for number in numbers if names[number] not in done]
    return service.write_events(rows, sources=wanted) if wanted else 0


def _visits(fair: Fair, rng: random.Random, *, count: int,
            halls: Sequence[int]) -> list[service.EventRow]:
    rows = []
    for _ in range(count):
        visitor = service.Actor(user_id=None, visitor=f"{rng.getrandbits(128):032x}")
        if not halls or rng.randrange(CATALOGUE_ONE_IN) == 0:
            rows.append(service.event_row(Kind.visit, fair_id=fair.id, actor=visitor))
        else:
            rows.append(service.event_row(Kind.hall_visit, fair_id=fair.id, actor=visitor,
                                          hall_id=rng.choice(halls)))
    return rows


def _lead_up(fair: Fair, rng: random.Random, *, signing: Signing, catalogue: Catalogue,
             halls: Sequence[int]) -> list[service.EventRow]:
    """The buyer model: a buyer searches the category of what it will sign for, views it and
    a few other projects of its tastes within its budget, and favourites some of them first.
    Its tastes and budget come from the buyer alone, never from a recommender."""
    buyer = service.Actor.of(signing.buyer, None)
    taste_rng = random.Random(f"taste-{signing.buyer.id}")
    categories = sorted(catalogue.by_category)
    tastes = taste_rng.sample(categories, min(TASTES, len(categories)))
    budget = taste_rng.choice((2, 5, 10)) * max(catalogue.price_fen.values(), default=0) // 10
    target = signing.project_id
    category = catalogue.category.get(target, "other")
    rows = [service.event_row(
        Kind.search, fair_id=fair.id, actor=buyer, data=service.search_data(
            category_name(category, "zh"), {"category": category},
            len(catalogue.by_category.get(category, []))))]
    if halls and rng.randrange(2) == 0:
        rows.append(service.event_row(Kind.hall_visit, fair_id=fair.id, actor=buyer,
                                      hall_id=rng.choice(halls)))
    liked = [project for taste in tastes for project in catalogue.by_category[taste]
             if catalogue.price_fen[project] <= budget or budget == 0]
    others = rng.sample(liked, min(len(liked), rng.choice(OTHER_VIEWS)))
    for project in [*others, target]:
        rows.append(service.event_row(Kind.impression, fair_id=fair.id, actor=buyer,
                                      project_id=project,
                                      category=catalogue.category.get(project)))
        rows.append(service.event_row(Kind.view, fair_id=fair.id, actor=buyer,
                                      project_id=project,
                                      category=catalogue.category.get(project)))
    if rng.randrange(FAVOURITED_ONE_IN) == 0:
        rows.append(service.event_row(Kind.favourite, fair_id=fair.id, actor=buyer,
                                      project_id=target, category=category))
    return rows
