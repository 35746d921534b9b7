"""The catalogue: search terms for projects (write side) and search with facets (read side)."""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from pypinyin import lazy_pinyin
from sqlalchemy import (
    ColumnElement,
    Integer,
    Subquery,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased, join, selectinload

from exhibitors.models import CatalogueCount, Exhibitor, Project, ProjectStatus, ProjectTerm
from fair import permissions
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from fair.money import format_yuan, parse_yuan
from fair.reference import CATEGORIES

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+", re.ASCII)
MAX_TERM_LENGTH = 40
#: A long query (a pasted title) is cut to this many terms; the rest only narrow it further.
MAX_QUERY_TERMS = 12
#: The term every project holds: a query with no words reads it.
EVERYTHING = ""

SORTS = ("relevance", "newest", "price_asc", "price_desc")
MAX_PER_PAGE = 100
#: A query of several terms with at most this many matches is counted and ordered in Python
#: from one fetch, rather than joined twice in the database.
MAX_MATCHES_IN_MEMORY = 10_000

#: The price facet's ranges: each holds prices from its lower bound up to, not including, the
#: next range's lower bound; the last has no upper bound. catalogue_counts is kept by these
#: ranges: rebuild_counts() after changing them.
PRICE_BOUNDS: tuple[int, ...] = tuple(
    parse_yuan(yuan, allow_zero=True)
    for yuan in ("0.00", "10000.00", "50000.00", "100000.00", "500000.00")
)


# Chinese has no spaces, so the index holds every CJK character and every pair of adjacent ones
# (川, 剧, 川剧), plus each lower-cased Latin word and number. A query is cut into the same kind
# of terms and a project matches when it holds every one: a Chinese word of two or more
# characters needs its bigrams (川剧, 非遗, 蜀绣), a lone character itself; a Latin word matches
# as a prefix ("oper" finds "opera"), a range scan (term >= "oper" and term < "opes") that
# PostgreSQL makes with the "C" collation so that the range holds exactly the terms with that
# prefix.


def terms_of(text: str) -> set[str]:
    """Cut text into index terms: CJK characters and bigrams, lower-cased Latin words."""
    terms: set[str] = set()
    for run in _CJK_RUN.findall(text):
        terms.update(run)
        terms.update(run[i : i + 2] for i in range(len(run) - 1))
    terms.update(word[:MAX_TERM_LENGTH] for word in _WORD.findall(text.lower()))
    return terms


@dataclass(frozen=True)
class QueryTerms:
    """What a query needs: terms matched exactly and prefixes matched as ranges."""

    exact: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)


def query_terms(query: str) -> QueryTerms:
    """Cut a query: bigrams of Chinese words, lone characters, Latin words as prefixes."""
    exact: list[str] = []
    for run in _CJK_RUN.findall(query):
        exact.extend([run] if len(run) == 1 else (run[i : i + 2] for i in range(len(run) - 1)))
    prefixes = [word[:MAX_TERM_LENGTH] for word in _WORD.findall(query.lower())]
    exact = list(dict.fromkeys(exact))[:MAX_QUERY_TERMS]
    prefixes = list(dict.fromkeys(prefixes))[: max(0, MAX_QUERY_TERMS - len(exact))]
    return QueryTerms(exact=frozenset(exact), prefixes=frozenset(prefixes))


def project_text(project: Project) -> str:
    """Everything of a project that search looks at, in Chinese and in English."""
    return " ".join((project.title, project.summary, project.title_en, project.summary_en,
                     project.tags.replace(",", " "), _TAG.sub(" ", project.description_html)))


def pinyin_terms_of(text: str) -> set[str]:
    """The pinyin of each pair of adjacent CJK characters, toneless: 川剧 -> "chuanju".

    A Latin query word is matched as a prefix, so "chuanju" finds 川剧 and "shuxiu" 蜀绣
    without any change to how queries are cut. Pairs only: single syllables ("ju") would
    match half the catalogue, and longer runs would multiply the postings.
    """
    terms: set[str] = set()
    for run in _CJK_RUN.findall(text):
        syllables = lazy_pinyin(run)
        if len(syllables) != len(run):
            continue  # a character pypinyin does not know: no pinyin rather than a wrong one
        terms.update((syllables[i] + syllables[i + 1])[:MAX_TERM_LENGTH]
                     for i in range(len(run) - 1))
    return terms


def price_bucket(price_fen: int) -> int:
    """The index in PRICE_BOUNDS of the price facet's range that holds the price."""
    return bisect.bisect_right(PRICE_BOUNDS, price_fen) - 1


_TAG = re.compile(r"<[^>]+>")


def strip_tags(html: str) -> str:
    """The text of sanitised HTML, for the index (procurement needs index theirs alike)."""
    return _TAG.sub(" ", html)


# --- The write side ------------------------------------------------------------------------
# Speed at 89,000 projects comes from two tables that index_projects keeps in step with the
# projects, in the transaction that changes them:
#
# - ``project_terms``: one posting per (project, term), carrying a copy of the project's status,
#   category, province, price and publication time, so that a search reads one narrow index and
#   never the wide project rows. Every project also has the term "" (no words).
# - ``catalogue_counts``: published projects per (term, category, province, price range). The
#   facets of a query with no words or one term are read from it, however many projects match.


def index_project(project: Project) -> None:
    """Rewrite a project's postings and the counts; call in the transaction that changed it."""
    index_projects([project])


def index_projects(projects: Sequence[Project]) -> None:
    """Rewrite the postings of several projects at once, and move the counts with them."""
    db.session.flush()
    counts: Counter[tuple[int, str, str, str, int]] = Counter()
    ids = [project.id for project in projects]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        old = db.session.execute(
            select(ProjectTerm.fair_id, ProjectTerm.term, ProjectTerm.category,
                   ProjectTerm.province, ProjectTerm.price_fen)
            .where(ProjectTerm.project_id.in_(chunk),
                   ProjectTerm.status == ProjectStatus.published)
        )
        for fair_id, term, category, province, price_fen in old:
            counts[(fair_id, term, category, province, price_bucket(price_fen))] -= 1
        db.session.execute(delete(ProjectTerm).where(ProjectTerm.project_id.in_(chunk)))
    rows = [row for project in projects for row in posting_rows(project)]
    for row in rows:
        if row["status"] is ProjectStatus.published:
            counts[(row["fair_id"], row["term"], row["category"], row["province"],
                    price_bucket(row["price_fen"]))] += 1
    if rows:
        db.session.execute(insert(ProjectTerm), rows)
    _add_counts(counts)


def posting_rows(project: Project) -> list[dict[str, Any]]:
    """The project's postings: its terms and "", each with a copy of what search needs."""
    # The title's pinyin and the English title rank like the Chinese title.
    in_title = (terms_of(project.title) | terms_of(project.title_en)
                | pinyin_terms_of(project.title))
    copied = {
        "project_id": project.id, "fair_id": project.fair_id,
        "exhibitor_id": project.exhibitor_id, "status": project.status,
        "category": project.category, "province": project.province,
        "price_fen": project.price_fen, "published_at": project.published_at,
    }
    # Pinyin of the title and tags only: in long descriptions it would find too much.
    terms = sorted(terms_of(project_text(project))
                   | pinyin_terms_of(f"{project.title} {project.tags}") | {EVERYTHING})
    return [{**copied, "term": term, "in_title": term in in_title} for term in terms]


def rebuild_counts(fair: Fair) -> None:
    """Count the fair's published postings afresh (after bulk loads); the caller commits."""
    db.session.execute(delete(CatalogueCount).where(CatalogueCount.fair_id == fair.id))
    bucket = _bucket(ProjectTerm.price_fen)
    grouped = (
        select(ProjectTerm.fair_id, ProjectTerm.term, ProjectTerm.category, ProjectTerm.province,
               bucket, func.count())
        .where(ProjectTerm.fair_id == fair.id, ProjectTerm.status == ProjectStatus.published)
        .group_by(ProjectTerm.fair_id, ProjectTerm.term, ProjectTerm.category,
                  ProjectTerm.province, bucket)
    )
    db.session.execute(insert(CatalogueCount).from_select(
        ["fair_id", "term", "category", "province", "price_bucket", "projects"], grouped))


def _add_counts(counts: Counter[tuple[int, str, str, str, int]]) -> None:
    """Add to catalogue_counts; keys in sorted order, so concurrent writers lock alike."""
    rows = [
        {"fair_id": fair_id, "term": term, "category": category, "province": province,
         "price_bucket": bucket, "projects": change}
        for (fair_id, term, category, province, bucket), change in sorted(counts.items())
        if change
    ]
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    upsert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(CatalogueCount)
    db.session.execute(
        upsert.on_conflict_do_update(
            index_elements=["fair_id", "term", "category", "province", "price_bucket"],
            set_={"projects": CatalogueCount.projects + upsert.excluded.projects},
        ),
        rows,
    )


# --- The read side -------------------------------------------------------------------------
# Facets are counted the usual way for faceted search: each facet counts the projects that
# match the words and every *other* filter. Queries of several terms, and price filters that
# cut through a price range, count their matches from the postings instead, starting from the
# rarest term.


@dataclass(frozen=True)
class CatalogueQuery:
    """What a visitor asks of the catalogue; amounts in fen, checked by the API's schema."""

    q: str = ""
    category: str | None = None
    province: str | None = None
    min_price_fen: int | None = None
    max_price_fen: int | None = None
    sort: str = "relevance"
    page: int = 1
    per_page: int = 24

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        if self.page < 1 or not 1 <= self.per_page <= MAX_PER_PAGE:
            raise ValueError(f"page starts at 1 and per_page is 1 to {MAX_PER_PAGE}")

    @property
    def filters(self) -> dict[str, Any]:
        """The facets the query filters by (None where it does not)."""
        return {"category": self.category, "province": self.province,
                "min_price_fen": self.min_price_fen, "max_price_fen": self.max_price_fen}

    @property
    def priced(self) -> bool:
        return self.min_price_fen is not None or self.max_price_fen is not None

    def in_price(self, price_fen: ColumnElement[int]) -> ColumnElement[bool]:
        """SQL: the price passes the filter."""
        return _between(price_fen, self.min_price_fen, self.max_price_fen)

    def admits(self, price_fen: int) -> bool:
        """The price passes the filter (in_price, in Python)."""
        return ((self.min_price_fen is None or price_fen >= self.min_price_fen)
                and (self.max_price_fen is None or price_fen <= self.max_price_fen))

    def prices_in(self, bucket: int) -> tuple[int, int | None] | None:
        """The lowest and highest price of the range (None: no limit) that pass the filter,
        or None when none does."""
        low, high = _bucket_prices(bucket)
        if self.min_price_fen is not None:
            low = max(low, self.min_price_fen)
        if self.max_price_fen is not None:
            high = self.max_price_fen if high is None else min(high, self.max_price_fen)
        return None if high is not None and low > high else (low, high)


class PriceRange(TypedDict):
    """One range of the price facet, in yuan strings; max is None for the last one."""

    min: str
    max: str | None
    count: int


class Facets(TypedDict):
    category: dict[str, int]
    province: dict[str, int]
    price: list[PriceRange]


@dataclass
class CataloguePage:
    """One page of matching projects, how many match in all, and the facet counts."""

    items: list[Project]
    total: int
    facets: Facets


@dataclass
class _Tally:
    """Matches counted two ways: per (category, province, price range) ignoring the price
    filter, for the price facet; and per (category, province) inside it, for the rest."""

    cells: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    priced: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __iadd__(self, other: _Tally) -> _Tally:
        self.cells.update(other.cells)
        self.priced.update(other.priced)
        return self


@dataclass(frozen=True)
class _Plan:
    """How to find the published matches: terms ordered rarest first, or nothing at all."""

    exact: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    nothing: bool = False

    @property
    def single(self) -> str | None:
        """The one term to read counts for ("" for no words), if there is one."""
        if not self.prefixes and len(self.exact) <= 1:
            return self.exact[0] if self.exact else EVERYTHING
        return None


Visible = Callable[[Any], ColumnElement[bool]]


def search(fair: Fair, *, viewer: User | None, query: CatalogueQuery) -> CataloguePage:
    """Search the fair's catalogue: published projects, and the viewer's own drafts."""
    terms = query_terms(query.q)
    own = _own_exhibitor_id(fair, viewer)
    plan = _plan(fair, terms)
    offset = (query.page - 1) * query.per_page
    if own is None and not plan.nothing and plan.single is None:
        # Several terms: find the matches once, and count and order them here, unless
        # there are so many that the database should do it.
        rows = db.session.execute(
            select(_matches(fair, plan, _published)).limit(MAX_MATCHES_IN_MEMORY + 1)
        ).tuples().all()
        if len(rows) <= MAX_MATCHES_IN_MEMORY:
            return _page_of(rows, query, offset=offset)
    tally = _published_tally(fair, plan, query)
    visible = _published
    if own is not None:
        # Drafts are not in the counts: count them one by one, with the query's own terms.
        # Their terms may be no published project's, so the page is found the same way.
        def drafts(postings: Any) -> ColumnElement[bool]:
            return and_(postings.status == ProjectStatus.draft, postings.exhibitor_id == own)

        def visible(postings: Any) -> ColumnElement[bool]:
            return or_(_published(postings), drafts(postings))

        plan = _Plan(exact=tuple(sorted(terms.exact)), prefixes=tuple(sorted(terms.prefixes)))
        tally += _scan(fair, plan, query, drafts)
    total, facets = _add_up(tally, query)
    items: list[Project] = []
    if offset < total:
        items = _page(fair, plan if terms else None, query, visible, offset=offset,
                      own=own is not None)
    return CataloguePage(items=items, total=total, facets=facets)


def _published(postings: Any) -> ColumnElement[bool]:
    return postings.status == ProjectStatus.published


def _own_exhibitor_id(fair: Fair, viewer: User | None) -> int | None:
    """The viewer's exhibitor in the fair, if the catalogue shows it its own drafts."""
    if viewer is None or viewer.role is not Role.exhibitor:
        return None
    exhibitor = db.session.scalar(
        select(Exhibitor).where(Exhibitor.fair_id == fair.id,
                                Exhibitor.organisation_id == viewer.organisation_id)
    )
    if exhibitor is None or not permissions.catalogue_shows_drafts_of(viewer, exhibitor):
        return None
    return exhibitor.id


def _published_tally(fair: Fair, plan: _Plan, query: CatalogueQuery) -> _Tally:
    if plan.nothing:
        return _Tally()
    term = plan.single
    if term is None:
        return _scan(fair, plan, query, _published)
    tally = _Tally()
    rows = db.session.execute(
        select(CatalogueCount.category, CatalogueCount.province, CatalogueCount.price_bucket,
               CatalogueCount.projects)
        .where(CatalogueCount.fair_id == fair.id, CatalogueCount.term == term,
               CatalogueCount.projects > 0)
    )
    cut: set[tuple[int, int | None]] = set()
    for category, province, bucket, count in rows:
        tally.cells[(category, province, bucket)] += count
        prices = query.prices_in(bucket)
        if prices == _bucket_prices(bucket):
            tally.priced[(category, province)] += count
        elif prices is not None:
            cut.add(prices)
    if cut:
        # The price filter cuts through a range or two: count the projects in those parts.
        tally.priced.update(_priced_counts(fair, term, list(cut)))
    return tally


def _plan(fair: Fair, terms: QueryTerms) -> _Plan:
    """Order the terms rarest first from the counts; a prefix that only one term has becomes
    that term. A term no published project holds means nothing matches."""
    if not terms:
        return _Plan()
    exact = set(terms.exact)
    prefixes = []
    for prefix in sorted(terms.prefixes):
        found = db.session.scalars(
            select(CatalogueCount.term)
            .where(CatalogueCount.fair_id == fair.id, CatalogueCount.term >= prefix,
                   CatalogueCount.term < successor(prefix), CatalogueCount.projects > 0)
            .group_by(CatalogueCount.term)
            .limit(2)
        ).all()
        if not found:
            return _Plan(nothing=True)
        if len(found) == 1:
            exact.add(found[0])
        else:
            prefixes.append(prefix)
    if len(exact) == 1 and not prefixes:
        # One term: its counts, read next, are all there is to know (none: nothing matches).
        return _Plan(exact=tuple(exact))
    frequency = dict(db.session.execute(
        select(CatalogueCount.term, func.sum(CatalogueCount.projects))
        .where(CatalogueCount.fair_id == fair.id, CatalogueCount.term.in_(exact),
               CatalogueCount.projects > 0)
        .group_by(CatalogueCount.term)
    ).tuples().all())
    if len(frequency) < len(exact):
        return _Plan(nothing=True)
    return _Plan(exact=tuple(sorted(exact, key=lambda term: (frequency[term], term))),
                 prefixes=tuple(prefixes))


def _priced_counts(fair: Fair, term: str, parts: Sequence[tuple[int, int | None]]
                   ) -> Counter[tuple[str, str]]:
    if term == EVERYTHING:
        # ix_projects_fair_price holds the projects of each part in a row.
        source: Any = Project
        where = [Project.fair_id == fair.id, _published(Project)]
    else:
        source = ProjectTerm
        where = [ProjectTerm.term == term, ProjectTerm.fair_id == fair.id,
                 _published(ProjectTerm)]
    rows = db.session.execute(
        select(source.category, source.province, func.count())
        .where(*where, or_(*(_between(source.price_fen, low, high) for low, high in parts)))
        .group_by(source.category, source.province)
    )
    return Counter({(category, province): count for category, province, count in rows})


def _scan(fair: Fair, plan: _Plan, query: CatalogueQuery, visible: Visible) -> _Tally:
    """Count the matches one by one, from their postings."""
    matches = _matches(fair, plan, visible)
    labelled = select(
        matches.c.category, matches.c.province,
        _bucket(matches.c.price_fen).label("bucket"),
        (case((query.in_price(matches.c.price_fen), 1), else_=0) if query.priced
         else literal_column("1")).label("priced"),
    ).subquery()
    rows = db.session.execute(
        select(labelled.c.category, labelled.c.province, labelled.c.bucket,
               labelled.c.priced, func.count())
        .group_by(labelled.c.category, labelled.c.province, labelled.c.bucket,
                  labelled.c.priced)
    )
    tally = _Tally()
    for category, province, bucket, priced, count in rows:
        tally.cells[(category, province, bucket)] += count
        if priced:
            tally.priced[(category, province)] += count
    return tally


def _matches(fair: Fair, plan: _Plan, visible: Visible) -> Subquery:
    """One row per matching project: the postings of the rarest term, the other terms joined
    by their primary key (project, term), prefixes looked up the same way.

    Columns: project_id, category, province, price_fen, published_at and score, the number of
    query terms in the project's title.
    """
    scores: list[ColumnElement[Any]] = []
    prefixes = plan.prefixes
    if plan.exact or not prefixes:
        driver: Any = aliased(ProjectTerm)
        source: Any = driver
        conditions = [driver.term == (plan.exact[0] if plan.exact else EVERYTHING),
                      driver.fair_id == fair.id, visible(driver)]
        scores.append(driver.in_title)
        for term in plan.exact[1:]:
            other = aliased(ProjectTerm)
            source = join(source, other, and_(other.project_id == driver.project_id,
                                              other.term == term))
            scores.append(other.in_title)
    else:
        # Only prefixes: a project holds several terms with the first one, so group them.
        first, prefixes = prefixes[0], prefixes[1:]
        source = (
            select(ProjectTerm.project_id,
                   func.min(ProjectTerm.category).label("category"),
                   func.min(ProjectTerm.province).label("province"),
                   func.min(ProjectTerm.price_fen).label("price_fen"),
                   func.min(ProjectTerm.published_at).label("published_at"),
                   func.max(cast(ProjectTerm.in_title, Integer)).label("in_title"))
            .where(ProjectTerm.term >= first, ProjectTerm.term < successor(first),
                   ProjectTerm.fair_id == fair.id, visible(ProjectTerm))
            .group_by(ProjectTerm.project_id)
            .subquery()
        )
        driver = source.c
        conditions = []
        scores.append(driver.in_title)
    for prefix in prefixes:
        other = aliased(ProjectTerm)
        best = (
            select(func.max(cast(other.in_title, Integer)))
            .where(other.project_id == driver.project_id, other.term >= prefix,
                   other.term < successor(prefix))
            .scalar_subquery()
        )
        conditions.append(best.is_not(None))
        scores.append(best)
    # One term ranks by its own column, so that its index gives the order without sorting.
    score = scores[0] if len(scores) == 1 else sum(
        (cast(part, Integer) for part in scores[1:]), start=cast(scores[0], Integer))
    return (
        select(driver.project_id, driver.category, driver.province, driver.price_fen,
               driver.published_at, score.label("score"))
        .select_from(source)
        .where(*conditions)
        .subquery()
    )


def _page(fair: Fair, plan: _Plan | None, query: CatalogueQuery, visible: Visible, *,
          offset: int, own: bool) -> list[Project]:
    """The page's projects, in order; ids come from the narrowest index that has them."""
    source: Any = Project
    where = [Project.fair_id == fair.id, visible(Project)]
    key = Project.id
    if plan is not None:
        source = _matches(fair, plan, visible).c
        where = []
        key = source.project_id
    if query.category is not None:
        where.append(source.category == query.category)
    if query.province is not None:
        where.append(source.province == query.province)
    if query.priced:
        where.append(query.in_price(source.price_fen))
    newest = source.published_at.desc().nulls_first() if own else source.published_at.desc()
    order: list[Any] = [newest, key.desc()]
    if query.sort == "price_asc":
        order = [source.price_fen.asc(), key.asc()]
    elif query.sort == "price_desc":
        order = [source.price_fen.desc(), key.desc()]
    elif query.sort == "relevance" and plan is not None:
        # Projects whose title holds more of the query's terms come first.
        order = [source.score.desc(), *order]
    return _load(db.session.scalars(
        select(key).where(*where).order_by(*order).limit(query.per_page).offset(offset)
    ).all())


def _page_of(rows: Sequence[tuple[int, str, str, int, Any, int]], query: CatalogueQuery, *,
             offset: int) -> CataloguePage:
    """Count and order matches fetched whole, as the database would (see _page)."""
    tally = _Tally()
    chosen = []
    for row in rows:
        _, category, province, price_fen, _, _ = row
        tally.cells[(category, province, price_bucket(price_fen))] += 1
        if query.admits(price_fen):
            tally.priced[(category, province)] += 1
            if query.category in (None, category) and query.province in (None, province):
                chosen.append(row)
    total, facets = _add_up(tally, query)
    if query.sort in ("price_asc", "price_desc"):
        chosen.sort(key=lambda row: (row[3], row[0]), reverse=query.sort == "price_desc")
    elif query.sort == "newest":
        chosen.sort(key=lambda row: (row[4], row[0]), reverse=True)
    else:
        chosen.sort(key=lambda row: (row[5], row[4], row[0]), reverse=True)
    page = chosen[offset : offset + query.per_page]
    return CataloguePage(items=_load([row[0] for row in page]), total=total, facets=facets)


def _load(ids: Sequence[int]) -> list[Project]:
    """The projects, with their media, in the order of the ids."""
    projects = db.session.scalars(
        select(Project).where(Project.id.in_(ids)).options(selectinload(Project.media))
    ).all()
    by_id = {project.id: project for project in projects}
    return [by_id[project_id] for project_id in ids if project_id in by_id]


def _add_up(tally: _Tally, query: CatalogueQuery) -> tuple[int, Facets]:
    total = 0
    categories: Counter[str] = Counter()
    provinces: Counter[str] = Counter()
    prices: Counter[int] = Counter()
    for (category, province), count in tally.priced.items():
        category_matches = query.category in (None, category)
        province_matches = query.province in (None, province)
        if category_matches and province_matches:
            total += count
        if province_matches:
            categories[category] += count
        if category_matches:
            provinces[province] += count
    for (category, province, bucket), count in tally.cells.items():
        if query.category in (None, category) and query.province in (None, province):
            prices[bucket] += count
    shown = {code for code, count in provinces.items() if count}
    if query.province is not None:
        shown.add(query.province)
    return total, Facets(
        category={code: categories.get(code, 0) for code in CATEGORIES},
        province={code: provinces.get(code, 0)
                  for code in sorted(shown, key=lambda code: (-provinces.get(code, 0), code))},
        price=price_ranges(prices),
    )


def price_ranges(counts: Counter[int]) -> list[PriceRange]:
    ranges: list[PriceRange] = []
    for index, bound in enumerate(PRICE_BOUNDS):
        upper = PRICE_BOUNDS[index + 1] if index + 1 < len(PRICE_BOUNDS) else None
        ranges.append(PriceRange(min=format_yuan(bound),
                                 max=None if upper is None else format_yuan(upper),
                                 count=counts.get(index, 0)))
    return ranges


def _bucket(price_fen: ColumnElement[int]) -> ColumnElement[int]:
    """SQL for price_bucket(); the bounds are written out so that GROUP BY sees one
    expression on PostgreSQL."""
    return case(
        *[(price_fen >= _number(bound), _number(index))
          for index, bound in reversed(list(enumerate(PRICE_BOUNDS))) if index > 0],
        else_=_number(0),
    )


def _bucket_prices(bucket: int) -> tuple[int, int | None]:
    """The lowest and highest price of a range of the price facet (None: no limit)."""
    following = bucket + 1
    return PRICE_BOUNDS[bucket], (
        PRICE_BOUNDS[following] - 1 if following < len(PRICE_BOUNDS) else None)


def _between(price_fen: ColumnElement[int], low: int | None, high: int | None
             ) -> ColumnElement[bool]:
    clause = price_fen >= _number(PRICE_BOUNDS[0] if low is None else low)
    return clause if high is None else clause & (price_fen <= _number(high))


def _number(value: int) -> ColumnElement[int]:
    """An integer written into the SQL text (never user text: amounts are checked ints)."""
    return literal_column(str(int(value)), Integer)


def successor(prefix: str) -> str:
    """The smallest string above every string starting with the prefix (code point order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
