"""The demo fair: the reference event's scale, plausible data, safe to build twice."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from exhibitors import catalogue
from exhibitors import media as media_files
from exhibitors.models import (
    Exhibitor,
    ExhibitorStatus,
    Media,
    MediaKind,
    Project,
    ProjectStatus,
    ProjectTerm,
)
from fair import demo
from fair.accounts import service as account_service
from fair.accounts.models import Organisation, Role, User
from fair.extensions import db
from fair.models import FairStatus
from fair.reference import CATEGORIES
from livehalls.models import Hall

pytestmark = pytest.mark.usefixtures("app")

CJK = re.compile(r"[\u3400-\u9fff]")


@pytest.fixture(autouse=True)
def no_videos(monkeypatch: pytest.MonkeyPatch) -> None:
    """The showcases' videos (ffmpeg) have their own tests, in test_demo_videos.py."""
    monkeypatch.setattr(demo, "demo_videos", lambda titles, media_root: [None] * len(titles))


@pytest.fixture
def media_root(app: Flask) -> Path:
    return Path(app.config["MEDIA_ROOT"])


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_demo_builds_an_open_fair_with_approved_exhibitors_and_projects(media_root: Path) -> None:
    built = demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=24, projects=60)

    assert built.created
    assert built.fair.status is FairStatus.open
    assert (built.exhibitors, built.projects, built.halls) == (24, 60, 3)
    assert built.provinces >= 7
    statuses = set(db.session.scalars(select(Exhibitor.status)))
    assert statuses == {ExhibitorStatus.approved}
    assert set(db.session.scalars(select(Project.status))) == {ProjectStatus.published}
    assert set(db.session.scalars(select(Project.category))) == set(CATEGORIES)
    provinces = set(db.session.scalars(select(Organisation.province).join(
        Exhibitor, Exhibitor.organisation_id == Organisation.id)))
    assert {"CN-SC", "CN-CQ", "CN-BJ", "CN-SH", "CN-GD", "CN-HN", "CN-XZ"} <= provinces
    assert [hall.name for hall in db.session.scalars(select(Hall).order_by(Hall.id))] == list(
        demo.HALL_NAMES)


def test_every_demo_exhibitor_shows_a_project_and_names_are_unique(media_root: Path) -> None:
    demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=30, projects=45)
    without_projects = db.session.scalar(
        select(func.count()).select_from(Exhibitor).where(
            ~Exhibitor.id.in_(select(Project.exhibitor_id)))
    )
    assert without_projects == 0
    names = list(db.session.scalars(select(Organisation.name)))
    assert len(names) == len(set(names))


def test_demo_projects_read_like_real_ones(media_root: Path) -> None:
    demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=10, projects=40)
    for project in db.session.scalars(select(Project)):
        assert 4 <= len(project.title) <= 40
        assert project.summary.startswith(project.exhibitor.organisation.name)
        assert "<h2>" in project.description_html
        assert 1 <= len(project.tag_list) <= 4
        assert project.price_fen > 0
        assert project.province == project.exhibitor.organisation.province


def test_every_demo_project_has_a_stored_poster_of_its_category(media_root: Path) -> None:
    demo.build_demo_fair(media_root=media_root, posters=2, exhibitors=8, projects=40)
    posters: dict[str, set[str]] = {}
    for project in db.session.scalars(select(Project)):
        [poster] = project.media
        assert poster.kind is MediaKind.image
        assert (poster.width, poster.height) == demo.POSTER_SIZE
        assert media_files.file_path(media_root, poster.sha256, poster.kind).is_file()
        assert media_files.thumbnail_path(media_root, poster.sha256).is_file()
        posters.setdefault(project.category, set()).add(poster.sha256)
    every_poster = set().union(*posters.values())
    assert len(every_poster) == sum(len(shas) for shas in posters.values())


def test_demo_index_matches_what_the_catalogue_writes(media_root: Path) -> None:
    demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=5, projects=12)
    project = db.session.scalars(select(Project)).first()
    assert project is not None

    def terms() -> set[str]:
        return set(db.session.scalars(
            select(ProjectTerm.term).where(ProjectTerm.project_id == project.id)))

    bulk = terms()
    catalogue.index_project(project)
    assert bulk
    assert bulk == terms()


def test_demo_logins_sign_in_with_their_roles(media_root: Path) -> None:
    demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=3, projects=3)
    logins = [
        (demo.ORGANISER_EMAIL, demo.ORGANISER_PASSWORD, Role.organiser),
        (demo.EXHIBITOR_EMAIL, demo.EXHIBITOR_PASSWORD, Role.exhibitor),
        (demo.BUYER_EMAIL, demo.BUYER_PASSWORD, Role.buyer),
    ]
    for email, password, role in logins:
        assert account_service.authenticate(email, password).role is role
    exhibitor = account_service.find_user(demo.EXHIBITOR_EMAIL)
    assert exhibitor is not None
    assert db.session.scalar(select(Exhibitor).where(
        Exhibitor.organisation_id == exhibitor.organisation_id)) is not None


def test_demo_built_twice_changes_nothing(media_root: Path) -> None:
    first = demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=6, projects=9)
    tables = (Organisation, User, Exhibitor, Project, ProjectTerm, Media, Hall)
    before = [count(model) for model in tables]

    again = demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=6, projects=9)

    assert not again.created
    assert again.fair.id == first.fair.id
    assert (again.exhibitors, again.projects, again.halls) == (6, 9, 3)
    after = [count(model) for model in tables]
    assert after == before


def test_demo_keeps_an_organiser_who_already_exists(media_root: Path) -> None:
    account_service.create_organiser(email=demo.ORGANISER_EMAIL, password="another-password")
    demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=2, projects=2)
    assert account_service.authenticate(demo.ORGANISER_EMAIL, "another-password")


def test_demo_has_open_needs_with_matches_and_responses(media_root: Path) -> None:
    from needs import service as need_service
    from needs.models import Need, NeedMatch, NeedResponse, NeedStatus

    built = demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=24, projects=60)
    assert count(Need) == len(demo.NEEDS)
    assert set(db.session.scalars(select(Need.status))) == {NeedStatus.open}
    assert count(NeedMatch) > 0
    assert count(NeedResponse) > 0
    found = need_service.search_needs(built.fair, query=need_service.NeedQuery(q="非遗"))
    assert [need.title for need in found.items] == ["非遗手工体验课进校园（200名小学生）"]


def test_every_word_the_demo_writes_with_has_an_english_twin() -> None:
    words = {word for theme in demo.THEMES.values()
             for word in (*theme.subjects, *theme.formats, *theme.tags)}
    words |= {*demo.FEATURES, *demo.AUDIENCES, *demo.INSTITUTIONS}
    assert words <= set(demo.ENGLISH)
    assert all(demo.ENGLISH[word].isascii() for word in words)


def test_demo_fair_replays_the_reference_event_with_english_text(media_root: Path) -> None:
    built = demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=30, projects=120)

    assert built.fair.name == "“成渝地•巴蜀情”2020年成渝地区文化和旅游公共服务及产品采购大会"
    projects = db.session.scalars(select(Project)).all()
    assert all(project.title_en and not CJK.search(project.title_en) for project in projects)
    assert all(project.summary_en and not CJK.search(project.summary_en)
               for project in projects)


@pytest.mark.parametrize(("english", "chinese"), [
    ("panda", "熊猫"), ("heritage", "非遗"), ("opera", "川剧"), ("opera", "藏戏"),
    ("Sichuan", "川剧"), ("embroidery", "蜀绣"),
])
def test_english_queries_find_what_their_chinese_twins_find(
    media_root: Path, english: str, chinese: str,
) -> None:
    fair = demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=40,
                                projects=200).fair

    def found(text: str) -> set[int]:
        page = catalogue.search(fair, viewer=None,
                                query=catalogue.CatalogueQuery(q=text, per_page=100))
        assert page.total <= 100
        return {project.id for project in page.items}

    assert found(chinese)
    assert found(english) >= found(chinese)


def test_sichuan_finds_every_project_from_sichuan_and_pinyin_finds_chinese_titles(
    media_root: Path,
) -> None:
    fair = demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=30,
                                projects=60).fair
    sichuan = set(db.session.scalars(select(Project.id).where(Project.province == "CN-SC")))
    page = catalogue.search(fair, viewer=None,
                            query=catalogue.CatalogueQuery(q="Sichuan", per_page=100))
    assert sichuan
    assert {project.id for project in page.items} >= sichuan
    with_title = set(db.session.scalars(select(Project.id).where(Project.title.contains("川剧"))))
    page = catalogue.search(fair, viewer=None,
                            query=catalogue.CatalogueQuery(q="chuanju", per_page=100))
    assert with_title
    assert {project.id for project in page.items} >= with_title


def test_demo_home_page_says_it_replays_the_event_and_shows_what_is_on(
    app: Flask, media_root: Path,
) -> None:
    demo.build_demo_fair(media_root=media_root, posters=1, exhibitors=12, projects=30)
    client = app.test_client()
    page = client.get("/?lang=zh").get_data(as_text=True)
    assert "“成渝地•巴蜀情”2020年成渝地区文化和旅游公共服务及产品采购大会" in page
    assert "重现" in page
    assert page.count("直播中") >= 2  # every hall's first showcase of the day is on air
    english = client.get("/?lang=en").get_data(as_text=True)
    assert "Live now and coming up" in english
    assert "replays" in english
