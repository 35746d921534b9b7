"""The replay's buyer model: what each buyer signs for follows its tastes and its province's
favourites, the same every time, each project once while others are left."""

from __future__ import annotations

from collections import Counter

from audience import replay
from fair.accounts.models import Organisation, Role, User
from fair.models import Fair

CATEGORIES = ("performance", "exhibition", "training", "tourism", "creative-goods",
              "intangible-heritage", "digital", "other")


def catalogue(size: int) -> replay.Catalogue:
    category = {number: CATEGORIES[number % len(CATEGORIES)] for number in range(1, size + 1)}
    by_category: dict[str, list[int]] = {}
    for project, name in category.items():
        by_category.setdefault(name, []).append(project)
    return replay.Catalogue(category=category,
                            price_fen={project: 100 * project for project in category},
                            by_category=by_category)


def buyer(number: int, province: str) -> User:
    return User(id=number, role=Role.buyer, organisation=Organisation(province=province))


FAIR = Fair(id=1)


def test_buyers_sign_for_their_tastes_and_their_provinces_favourites() -> None:
    projects = catalogue(400)
    sichuan = [buyer(number, "CN-SC") for number in range(1, 5)]
    tibet = [buyer(number, "CN-XZ") for number in range(5, 9)]
    order = [*sichuan, *tibet] * 60
    chosen = replay.signed_projects(FAIR, order, catalogue=projects, seed=2020)
    assert chosen == replay.signed_projects(FAIR, order, catalogue=projects, seed=2020)
    assert len(chosen) == len(order)
    by_buyer: dict[int, list[int]] = {}
    for who, project in zip(order, chosen, strict=True):
        by_buyer.setdefault(who.id, []).append(project)
    for who in [*sichuan, *tibet]:
        signed = by_buyer[who.id]
        # Each project once while others are left.
        assert len(set(signed)) == len(signed)
        # Its tastes (2 categories of 8, within its budget) hold far more of its intents
        # than their share of the catalogue.
        liked = set(projects.tastes_of(who))
        share = sum(project in liked for project in signed) / len(signed)
        assert share > 1.5 * len(liked) / 400
    # A province's buyers share favourites: more of their projects in common than with the
    # buyers of another province.
    def shared(group: list[User]) -> int:
        counts = Counter(project for who in group for project in set(by_buyer[who.id]))
        return sum(count >= 3 for count in counts.values())

    mixed = [sichuan[0], sichuan[1], tibet[0], tibet[1]]
    assert shared(sichuan) > shared(mixed)
    assert shared(tibet) > shared(mixed)


def test_a_buyer_who_signed_everything_signs_again() -> None:
    projects = catalogue(5)
    who = buyer(1, "CN-SC")
    chosen = replay.signed_projects(FAIR, [who] * 12, catalogue=projects, seed=7)
    assert sorted(chosen[:5]) == [1, 2, 3, 4, 5]
    assert set(chosen[5:]) <= {1, 2, 3, 4, 5}
