"""Catalogue search and facet latency at the reference scale (890) and 100 times it (89,000),
and the needs' search (供需对接) at 10,000 needs.

Builds a fair of published projects on SQLite (a file in a temporary folder) and on PostgreSQL
(its own database, created and dropped), with the demo fair's Chinese word lists and some
English, and times a mix of queries through the real ``catalogue.search`` and through the HTTP
API. Then, in a fresh database of each kind, a fair of 10,000 needs (four in five open) and a
mix of the needs list's queries through ``needs.service.search_needs`` and the HTTP API.
Targets: p95 under 50 ms at 89,000 projects and at 10,000 needs, on both databases.

    .venv/bin/python -m bench.catalogue                      # both scales, both databases
    .venv/bin/python -m bench.catalogue --scales 890 --databases sqlite --repeat 10
    .venv/bin/python -m bench.catalogue --scales '' --needs 10000   # the needs only
"""

from __future__ import annotations

import argparse
import datetime as dt
import enum
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text

from exhibitors import catalogue
from exhibitors.catalogue import CatalogueQuery
from exhibitors.models import Project, ProjectStatus, ProjectTerm
from fair import create_app, demo
from fair.accounts.models import Organisation, Role, User
from fair.database import utcnow
from fair.extensions import db
from fair.models import Fair, FairStatus
from fair.reference import CATEGORIES
from needs import service as need_service
from needs.models import NeedStatus

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_DATABASE = "fair_bench_catalogue"
TARGET_P95_MS = 50.0
#: Projects per exhibitor, as at the reference event (890 projects from 317 exhibitors).
PROJECTS_PER_EXHIBITOR = 890 / 317

#: English lines that some projects carry after their Chinese summary.
ENGLISH = {
    "川剧变脸": "Sichuan Opera face changing, a signature show of Chengdu.",
    "川剧折子戏": "Highlights of Sichuan Opera for theatres and cultural centres.",
    "京剧名段": "Famous arias of Peking Opera with a live band.",
    "熊猫主题音乐剧": "A family musical about the giant panda.",
    "大熊猫科普": "Giant panda science exhibition for schools.",
    "大熊猫基地": "Study tour to the giant panda breeding base.",
    "大熊猫文创": "Giant panda gifts and souvenirs.",
    "蜀绣": "Shu embroidery, one of China's four great embroideries.",
    "蜀锦蜀绣": "Shu brocade and Shu embroidery masterpieces.",
    "三星堆青铜文明": "Bronzes of Sanxingdui, the ancient Shu civilisation.",
    "三星堆": "Sanxingdui digital museum and immersive VR tour.",
    "茶艺": "Tea ceremony workshop with a master of Sichuan tea.",
    "唐卡艺术": "Thangka painting from Tibet.",
    "九寨沟": "Jiuzhaigou valley nature and culture tour.",
    "都江堰": "Dujiangyan irrigation system heritage tour.",
    "杂技": "Acrobatics show for festivals and theme parks.",
    "交响音乐": "Symphony concert season for public venues.",
}


@dataclass(frozen=True)
class Probe:
    """One kind of query in the mix, and how to ask it."""

    name: str
    queries: tuple[CatalogueQuery, ...]


PROBES = (
    Probe("Chinese word", tuple(CatalogueQuery(q=word) for word in
                                ("川剧", "蜀绣", "非遗", "熊猫", "变脸", "三星堆"))),
    Probe("Chinese phrase", tuple(CatalogueQuery(q=word) for word in
                                  ("川剧变脸专场演出", "非遗传承体验", "大熊猫 研学"))),
    Probe("common word 文化", (CatalogueQuery(q="文化"), CatalogueQuery(q="适合"))),
    Probe("single character", tuple(CatalogueQuery(q=word) for word in ("剧", "绣", "茶"))),
    Probe("English word", tuple(CatalogueQuery(q=word) for word in
                                ("opera", "Panda", "embroidery", "tea", "VR"))),
    Probe("category filter", tuple(CatalogueQuery(category=category) for category in
                                   ("performance", "tourism", "digital"))),
    Probe("province + price", (
        CatalogueQuery(province="CN-SC", min_price_fen=1_000_000, max_price_fen=10_000_000),
        CatalogueQuery(province="CN-CQ", max_price_fen=5_000_000, sort="price_asc"),
        CatalogueQuery(q="非遗", province="CN-SC", min_price_fen=2_000_000),
    )),
    Probe("empty query, facets", (CatalogueQuery(), CatalogueQuery(sort="price_desc"))),
    Probe("page 5", (CatalogueQuery(page=5), CatalogueQuery(q="非遗", page=5),
                     CatalogueQuery(category="tourism", sort="price_asc", page=5))),
)
#: The kinds of query the issue names; the others are there to find the slow cases.
BRIEF_MIX = ("Chinese word", "English word", "category filter", "province + price",
             "empty query, facets", "page 5")
HTTP_PROBES = (
    "q=%E5%B7%9D%E5%89%A7",  # 川剧
    "q=opera&sort=price_asc",
    "category=intangible-heritage&province=CN-SC&min_price=10000&max_price=200000",
    "",
    "page=5&per_page=24",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="890,89000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=20,
                        help="times each query of the mix is asked")
    parser.add_argument("--needs", type=int, default=10_000,
                        help="needs in the needs' fair (0: the catalogue only)")
    options = parser.parse_args(argv)
    scales = [int(scale) for scale in options.scales.split(",") if scale]
    missed = []
    for database in options.databases.split(","):
        for scale in scales:
            with _database(database) as url:
                app = _app(url)
                with app.app_context():
                    upgrade()
                    started = time.perf_counter()
                    fair_id, rows = build(scale)
                    print(f"\n== {database}, {scale:,} published projects "
                          f"({rows:,} search terms, built in "
                          f"{time.perf_counter() - started:.1f} s)")
                    p95 = run(app, fair_id, repeat=options.repeat)
                    if scale >= 89_000 and p95 >= TARGET_P95_MS:
                        missed.append(f"{database} at {scale:,}: p95 {p95:.1f} ms")
                    db.session.remove()
                    db.engine.dispose()
        if options.needs:
            with _database(database) as url:
                app = _app(url)
                with app.app_context():
                    upgrade()
                    started = time.perf_counter()
                    fair_id = build_needs(options.needs)
                    _analyse()
                    print(f"\n== {database}, {options.needs:,} needs (built in "
                          f"{time.perf_counter() - started:.1f} s)")
                    p95 = run_needs(app, fair_id, repeat=options.repeat)
                    if p95 >= TARGET_P95_MS:
                        missed.append(f"{database} at {options.needs:,} needs: p95 {p95:.1f} ms")
                    db.session.remove()
                    db.engine.dispose()
    if missed:
        print("\nTarget missed (p95 < 50 ms):", "; ".join(missed))
        return 1
    print("\nTarget met: p95 under 50 ms at 89,000 projects and at the needs' scale.")
    return 0


@contextmanager
def _database(kind: str) -> Iterator[str]:
    """A fresh, empty database of the kind, gone afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="fair-bench-") as folder:
            yield f"sqlite:///{Path(folder) / 'bench.sqlite'}"
        return
    if kind != "postgresql":
        raise SystemExit(f"unknown database {kind!r}: sqlite or postgresql")
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{POSTGRES_DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{POSTGRES_DATABASE}"')
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{POSTGRES_DATABASE}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{POSTGRES_DATABASE}" WITH (FORCE)')


def _app(url: str) -> Flask:
    folder = Path(tempfile.gettempdir()) / "fair-bench-instance"
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench",
                       "MEDIA_ROOT": str(folder / "media"), "SOCKETIO_ASYNC_MODE": "threading",
                       "REDIS_URL": None})


# --- Building the fair ---------------------------------------------------------------------


def build(projects: int, *, seed: int = 2020) -> tuple[int, int]:
    """Bulk-load an open fair with approved exhibitors and published projects, their postings
    (from catalogue.posting_rows) and counts (catalogue.rebuild_counts)."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    fair = Fair(name=f"基准测试采购大会 {projects}", starts_at=now,
                ends_at=now + dt.timedelta(days=7), status=FairStatus.open)
    db.session.add(fair)
    db.session.commit()

    exhibitors = max(1, round(projects / PROJECTS_PER_EXHIBITOR))
    provinces = rng.choices(list(demo.PROVINCE_WEIGHTS), k=exhibitors,
                            weights=list(demo.PROVINCE_WEIGHTS.values()))
    organisations = [
        (number, f"{rng.choice(demo.CITIES[province])}{rng.choice(demo.INSTITUTIONS)}{number}",
         province)
        for number, province in enumerate(provinces, start=1)
    ]
    categories = rng.choices(list(demo.CATEGORY_WEIGHTS), k=projects,
                             weights=list(demo.CATEGORY_WEIGHTS.values()))
    made = [_project(rng, number, fair.id, organisations[rng.randrange(exhibitors)], category,
                     now)
            for number, category in enumerate(categories, start=1)]

    _copy("organisations", ("id", "name", "province", "created_at"),
          [(number, name, province, _stamp(now)) for number, name, province in organisations])
    _copy("exhibitors", ("id", "fair_id", "organisation_id", "status", "applied_at",
                         "decided_at"),
          [(number, fair.id, number, "approved", _stamp(now), _stamp(now))
           for number, _, _ in organisations])
    columns = ("id", "fair_id", "exhibitor_id", "title", "category", "province", "summary",
               "description_source", "description_html", "price_fen", "tags", "status",
               "created_at", "published_at")
    _copy("projects", columns, [tuple(_value(getattr(project, column)) for column in columns)
                                for project in made])
    postings = ("project_id", "term", "in_title", "fair_id", "exhibitor_id", "status",
                "category", "province", "price_fen", "published_at")
    rows = [tuple(_value(row[column]) for column in postings)
            for project in made for row in catalogue.posting_rows(project)]
    # Sorting the index once is far quicker than inserting millions of rows into it.
    indexes = ProjectTerm.__table__.indexes
    with db.engine.begin() as connection:
        for index in indexes:
            index.drop(connection)
    _copy("project_terms", postings, rows)
    with db.engine.begin() as connection:
        for index in indexes:
            index.create(connection)
    catalogue.rebuild_counts(fair)
    db.session.commit()
    _analyse()
    return fair.id, len(rows)


def _project(rng: random.Random, number: int, fair_id: int,
             organisation: tuple[int, str, str], category: str, now: dt.datetime) -> Project:
    """A project as the demo writes them, with an English line on some."""
    theme = demo.THEMES[category]
    subject, kind = rng.choice(theme.subjects), rng.choice(theme.formats)
    exhibitor_id, organisation_name, province = organisation
    features = rng.sample(demo.FEATURES, 2)
    audience = rng.choice(demo.AUDIENCES)
    summary = f"{organisation_name}推出的{subject}{kind}，{features[0]}，适合{audience}。"
    if subject in ENGLISH and rng.random() < 0.6:
        summary += " " + ENGLISH[subject]
    description = (
        f"<h2>项目亮点</h2><ul><li>{features[0]}</li><li>{features[1]}</li>"
        f"<li>适合{audience}</li></ul><p>{subject}{kind}包含策划、组织实施与宣传推广，"
        "可根据采购方需求调整规模与时长。</p>"
    )
    low, high = theme.price_yuan
    tags = [subject, *rng.sample(theme.tags, rng.randint(1, 3))]
    published = now - dt.timedelta(minutes=rng.randint(0, 40_000))
    return Project(
        id=number, fair_id=fair_id, exhibitor_id=exhibitor_id, title=f"{subject}{kind}",
        category=category, province=province, summary=summary,
        description_source=description, description_html=description,
        price_fen=rng.randrange(low, high + 1, 10) * 100, tags=",".join(dict.fromkeys(tags)),
        status=ProjectStatus.published, created_at=published, published_at=published,
    )


def _value(value: Any) -> Any:
    """A column value as the bulk load writes it."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return _stamp(value)
    return value


def _stamp(moment: dt.datetime) -> dt.datetime | str:
    """A UTC time as each database's column takes it (SQLite: SQLAlchemy's text form)."""
    if db.engine.dialect.name == "postgresql":
        return moment
    return moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def _copy(table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """The fastest bulk load each database offers: COPY on PostgreSQL, executemany on SQLite."""
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        names = ", ".join(columns)
        if db.engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608
        connection.commit()
    finally:
        connection.close()


def _analyse() -> None:
    """Give PostgreSQL its statistics, as autovacuum would after a load. SQLite gets none:
    the fair never runs ANALYZE there, so its plans must be good without."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))


# --- Building the needs' fair --------------------------------------------------------------

NEED_SUBJECTS = ("非遗手工体验课", "社区文艺演出", "研学旅游线路", "数字化展陈", "文创产品定制",
                 "川剧折子戏", "蜀绣培训", "熊猫主题音乐会", "乡村文化节", "图书馆阅读推广")
NEED_PLACES = ("进校园", "进社区", "景区驻场", "春节专场", "暑期", "周末")
NEED_PROVINCES = ("CN-SC", "CN-CQ", "CN-BJ", "CN-SH", "CN-GD", "CN-HN", "CN-XZ")
#: The needs list's mix: its first page, words, facets, a budget range, a later page.
NEED_QUERIES = (
    need_service.NeedQuery(),
    need_service.NeedQuery(q="非遗"),
    need_service.NeedQuery(q="研学旅游"),
    need_service.NeedQuery(q="川剧", province="CN-SC"),
    need_service.NeedQuery(category="performance"),
    need_service.NeedQuery(min_budget_fen=5_000_000, max_budget_fen=10_000_000),
    need_service.NeedQuery(q="文创", category="creative-goods", page=3),
)
NEED_HTTP_PROBES = ("", "q=非遗", "q=川剧&province=CN-SC", "category=performance",
                    "min_budget=50000.00&max_budget=100000.00")


def build_needs(count: int, *, seed: int = 2020) -> int:
    """A fair of `count` needs from one buyer, four in five open, with their search terms."""
    rng = random.Random(seed)
    now = utcnow()
    fair = Fair(name="需求基准", starts_at=now, ends_at=now + dt.timedelta(days=7),
                status=FairStatus.open)
    organisation = Organisation(name="重庆市文化馆", province="CN-CQ", verified_at=now)
    db.session.add_all([fair, organisation])
    db.session.flush()
    buyer = User(email="bench@example.com", password_hash="-", name="采购",  # noqa: S106 - no sign-in
                 role=Role.buyer, organisation_id=organisation.id)
    db.session.add(buyer)
    db.session.flush()
    rows, terms = [], []
    for number in range(1, count + 1):
        title = f"{rng.choice(NEED_SUBJECTS)}{rng.choice(NEED_PLACES)}"
        low = rng.randint(1, 200) * 100_000
        rows.append((number, fair.id, buyer.id, organisation.id, title, "", "",
                     rng.choice(list(CATEGORIES)), rng.choice(NEED_PROVINCES), "", low,
                     low * rng.randint(1, 4), _stamp(now + dt.timedelta(days=rng.randint(1, 30))),
                     10, 0, _value(NeedStatus.open if rng.random() < 0.8 else NeedStatus.closed),
                     _stamp(now)))
        terms.extend((number, term) for term in catalogue.terms_of(title))
    db.session.commit()
    _copy("needs", ("id", "fair_id", "buyer_id", "organisation_id", "title",
                    "description_source", "description_html", "category", "province", "city",
                    "budget_min_fen", "budget_max_fen", "deadline", "max_responses",
                    "response_count", "status", "created_at"), rows)
    _copy("need_terms", ("need_id", "term"), terms)
    return fair.id


# --- Timing --------------------------------------------------------------------------------


def run(app: Flask, fair_id: int, *, repeat: int) -> float:
    """Time the mix; print p50/p95/p99 per kind of query and overall; return overall p95."""
    fair = db.session.get(Fair, fair_id)
    assert fair is not None
    samples: dict[str, list[float]] = {}
    for probe in PROBES:
        for query in probe.queries:
            _search(fair, query)  # warm the caches, as a running server would have them
        samples[probe.name] = [
            _timed(lambda query=query: _search(fair, query))
            for _ in range(repeat) for query in probe.queries
        ]
    client = app.test_client()
    for query_string in HTTP_PROBES:
        assert client.get(f"/api/v1/fairs/{fair_id}/projects?{query_string}").status_code == 200
    samples["HTTP API (5 queries)"] = [
        _timed(lambda query_string=query_string: _get(client, fair_id, query_string))
        for _ in range(repeat) for query_string in HTTP_PROBES
    ]
    everything = [sample for values in samples.values() for sample in values]
    print(f"{'query':<24}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'matches':>9}")
    for name, values in samples.items():
        matches = "" if name.startswith("HTTP") else _matches(fair, name)
        print(f"{name:<24}{len(values):>5}" + "".join(f"{value:>9.1f}" for value in
                                                     _percentiles(values)) + f"{matches:>9}")
    named = [sample for name in BRIEF_MIX for sample in samples[name]]
    print(f"{'the six named kinds':<24}{len(named):>5}"
          + "".join(f"{value:>9.1f}" for value in _percentiles(named)))
    p50, p95, p99 = _percentiles(everything)
    print(f"{'all':<24}{len(everything):>5}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}")
    return p95


def run_needs(app: Flask, fair_id: int, *, repeat: int) -> float:
    """Time the needs list's mix, in the service and through the HTTP API; return the p95."""
    fair = db.session.get(Fair, fair_id)
    assert fair is not None
    for query in NEED_QUERIES:
        need_service.search_needs(fair, query=query)  # warm, as a running server would be
    samples = {"service (7 queries)": [
        _timed(lambda query=query: need_service.search_needs(fair, query=query))
        for _ in range(repeat) for query in NEED_QUERIES]}
    client = app.test_client()
    for query_string in NEED_HTTP_PROBES:
        assert client.get(f"/api/v1/fairs/{fair_id}/needs?{query_string}").status_code == 200
    samples["HTTP API (5 queries)"] = [
        _timed(lambda query_string=query_string: client.get(
            f"/api/v1/fairs/{fair_id}/needs?{query_string}").close())
        for _ in range(repeat) for query_string in NEED_HTTP_PROBES]
    everything = [sample for values in samples.values() for sample in values]
    print(f"{'needs query':<24}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for name, values in [*samples.items(), ("all", everything)]:
        print(f"{name:<24}{len(values):>5}" + "".join(f"{value:>9.1f}" for value in
                                                     _percentiles(values)))
    return _percentiles(everything)[1]


def _search(fair: Fair, query: CatalogueQuery) -> catalogue.CataloguePage:
    page = catalogue.search(fair, viewer=None, query=query)
    return page


def _get(client: Any, fair_id: int, query_string: str) -> None:
    response = client.get(f"/api/v1/fairs/{fair_id}/projects?{query_string}")
    response.close()


def _timed(call: Callable[[], object]) -> float:
    """Milliseconds for one call, in a fresh session as each request has."""
    db.session.remove()
    started = time.perf_counter()
    call()
    elapsed = (time.perf_counter() - started) * 1000
    db.session.remove()
    return elapsed


def _matches(fair: Fair, name: str) -> str:
    probe = next(probe for probe in PROBES if probe.name == name)
    counts = [catalogue.search(fair, viewer=None, query=query).total for query in probe.queries]
    return f"{min(counts)}-{max(counts)}" if min(counts) != max(counts) else str(counts[0])


def _percentiles(values: Sequence[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


if __name__ == "__main__":
    sys.exit(main())
