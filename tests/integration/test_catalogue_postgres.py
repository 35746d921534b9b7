"""The catalogue on PostgreSQL: the same matches, counts and order as on SQLite.

PostgreSQL differs where it matters here: prefix ranges need the "C" collation of the terms,
GROUP BY must see one expression for the price ranges, NULLs sort the other way, and the
counts are kept with its own upsert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask_migrate import upgrade

from exhibitors import catalogue
from exhibitors import service as exhibitor_service
from exhibitors.catalogue import CatalogueQuery, search
from fair import create_app
from fair import service as fair_service
from fair.accounts import service as account_service
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair, FairStatus
from tests.conftest import PASSWORD, base_config

pytestmark = pytest.mark.integration

PROJECTS = [
    # title, summary, category, province, price in fen
    ("川剧变脸专场演出", "Sichuan Opera face changing.", "performance", "CN-SC", 12_000_000),
    ("蜀绣非遗体验课", "国家级非遗传承人授课。", "intangible-heritage", "CN-SC", 880_000),
    ("巴渝民俗文化展", "Folk customs, 非遗 and more.", "exhibition", "CN-CQ", 3_500_000),
    ("京剧名段数字音乐会", "Peking opera in a digital hall.", "digital", "CN-BJ", 60_000_000),
    ("长城研学旅游线路", "Great Wall study tour.", "tourism", "CN-BJ", 450_000),
]


@pytest.fixture
def app(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setattr(account_service, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    config = base_config(tmp_path, tmp_path / "unused.sqlite")
    config["SQLALCHEMY_DATABASE_URI"] = postgres_url
    app = create_app(config)
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def stage(app: Flask) -> tuple[Fair, User]:
    """The five projects of tests/exhibitors/test_catalogue.py, and a draft of the first
    exhibitor's."""
    organiser = account_service.create_organiser(email="organiser@example.com",
                                                 password=PASSWORD)
    starts = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    fair = fair_service.create_fair(organiser=organiser, name="文旅采购大会", starts_at=starts,
                                    ends_at=starts + dt.timedelta(days=3))
    fair_service.update_fair(fair, organiser=organiser, changes={"status": FairStatus.open})
    users: dict[str, User] = {}
    for number, (title, summary, category, province, price_fen) in enumerate(PROJECTS):
        if province not in users:
            users[province] = account_service.register_user(
                email=f"exhibitor{number}@example.com", password=PASSWORD, name="展商",
                role=Role.exhibitor, organisation_name=f"文化馆{number}", province=province)
            exhibitor = exhibitor_service.apply_to_fair(fair, user=users[province])
            exhibitor_service.approve_exhibitor(exhibitor, organiser=organiser)
        project = exhibitor_service.create_project(
            fair, user=users[province], title=title, category=category, price_fen=price_fen,
            summary=summary)
        exhibitor_service.publish_project(project, user=users[province])
    exhibitor_service.create_project(fair, user=users["CN-SC"], title="羌绣草稿",
                                     category="other", price_fen=100_000)
    return fair, users["CN-SC"]


def titles(fair: Fair, viewer: User | None = None, **query: object) -> list[str]:
    page = search(fair, viewer=viewer, query=CatalogueQuery(**query))  # type: ignore[arg-type]
    return [project.title for project in page.items]


@pytest.mark.parametrize(("query", "expected"), [
    ({"q": "非遗"}, ["蜀绣非遗体验课", "巴渝民俗文化展"]),
    ({"q": "剧"}, ["京剧名段数字音乐会", "川剧变脸专场演出"]),
    ({"q": "OPER"}, ["京剧名段数字音乐会", "川剧变脸专场演出"]),
    ({"q": "川剧 opera"}, ["川剧变脸专场演出"]),
    ({"q": "长城旅游"}, []),
    ({"sort": "price_asc", "province": "CN-BJ"}, ["长城研学旅游线路", "京剧名段数字音乐会"]),
    ({"min_price_fen": 880_000, "max_price_fen": 12_000_000, "sort": "price_desc"},
     ["川剧变脸专场演出", "巴渝民俗文化展", "蜀绣非遗体验课"]),
])
def test_searches_find_the_same_projects(stage: tuple[Fair, User], query: dict[str, object],
                                         expected: list[str]) -> None:
    assert titles(stage[0], **query) == expected


def test_own_drafts_come_first_for_their_exhibitor(stage: tuple[Fair, User]) -> None:
    fair, owner = stage
    assert titles(fair, owner, sort="newest")[0] == "羌绣草稿"
    assert titles(fair, owner, q="羌绣") == ["羌绣草稿"]
    assert titles(fair, None, q="羌绣") == []


@pytest.mark.parametrize("query", [
    CatalogueQuery(),
    CatalogueQuery(q="opera", province="CN-SC"),
    CatalogueQuery(q="非遗", min_price_fen=880_000, max_price_fen=3_500_000),
    CatalogueQuery(category="tourism", min_price_fen=1, max_price_fen=60_000_000),
])
def test_counts_read_from_the_table_equal_counting_one_by_one(
    stage: tuple[Fair, User], monkeypatch: pytest.MonkeyPatch, query: CatalogueQuery
) -> None:
    fair, _ = stage
    quick = search(fair, viewer=None, query=query)
    monkeypatch.setattr(catalogue._Plan, "single", property(lambda plan: None))
    monkeypatch.setattr(catalogue, "MAX_MATCHES_IN_MEMORY", 0)
    counted = search(fair, viewer=None, query=query)
    assert (quick.total, quick.facets, quick.items) == (counted.total, counted.facets,
                                                        counted.items)
    catalogue.rebuild_counts(fair)
    db.session.commit()
    assert search(fair, viewer=None, query=query).facets == quick.facets
