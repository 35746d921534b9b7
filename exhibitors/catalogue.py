"""The catalogue: search terms for projects (write side) and search with facets (read side).

Chinese has no spaces, so the index holds every pair of adjacent CJK characters (川剧, 非遗,
蜀绣) and the last character of each run of them, plus each lower-cased Latin word and number.
A query is cut into the same kind of terms and a project matches when it holds every one:
a word of two or more Chinese characters needs its bigrams; a lone Chinese character and a
Latin word match as prefixes of terms (剧 finds 剧场 and the final 剧 of 川剧; "oper" finds
"opera"), because every character of a run starts one of its terms. A prefix is a range scan
(term >= "剧" and term < the next character) on one B-tree index on (term, project_id), which
SQLite and PostgreSQL serve alike; PostgreSQL compares terms with the "C" collation so that the
range holds exactly the terms with that prefix.

Facets are counted the usual way for faceted search: each facet counts the projects that match
the text and every *other* filter. One GROUP BY over (category, province, price range, inside
the price filter) gives a small cube from which the total and all three facets are added up.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

from sqlalchemy import ColumnElement, case, delete, func, insert, literal, or_, select
from sqlalchemy.orm import selectinload

from exhibitors.models import Exhibitor, Project, ProjectStatus, ProjectTerm
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

SORTS = ("relevance", "newest", "price_asc", "price_desc")
MAX_PER_PAGE = 100

#: The price facet's ranges: each holds prices from its lower bound up to, not including, the
#: next range's lower bound; the last has no upper bound.
PRICE_BOUNDS: tuple[int, ...] = tuple(
    parse_yuan(yuan, allow_zero=True)
    for yuan in ("0.00", "10000.00", "50000.00", "100000.00", "500000.00")
)


def terms_of(text: str) -> set[str]:
    """Cut text into index terms: CJK bigrams, each CJK run's last character, Latin words."""
    terms: set[str] = set()
    for run in _CJK_RUN.findall(text):
        terms.update(run[i : i + 2] for i in range(len(run) - 1))
        terms.add(run[-1])
    terms.update(word[:MAX_TERM_LENGTH] for word in _WORD.findall(text.lower()))
    return terms


@dataclass(frozen=True)
class QueryTerms:
    """What a query needs: terms matched exactly and prefixes matched as ranges."""

    exact: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset()
    #: The query's Chinese runs and Latin words, to rank projects whose title holds them.
    words: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)


def query_terms(query: str) -> QueryTerms:
    """Cut a query: bigrams of Chinese words, prefixes for lone characters and Latin words."""
    exact: list[str] = []
    prefixes: list[str] = []
    runs = _CJK_RUN.findall(query)
    for run in runs:
        if len(run) == 1:
            prefixes.append(run)
        else:
            exact.extend(run[i : i + 2] for i in range(len(run) - 1))
    latin = [word[:MAX_TERM_LENGTH] for word in _WORD.findall(query.lower())]
    prefixes.extend(latin)
    exact = list(dict.fromkeys(exact))[:MAX_QUERY_TERMS]
    prefixes = list(dict.fromkeys(prefixes))[: max(0, MAX_QUERY_TERMS - len(exact))]
    return QueryTerms(exact=frozenset(exact), prefixes=frozenset(prefixes),
                      words=tuple(dict.fromkeys([*runs, *latin])))


def project_text(project: Project) -> str:
    return " ".join((project.title, project.summary, project.tags.replace(",", " "),
                     _strip_tags(project.description_html)))


def index_project(project: Project) -> None:
    """Rewrite the project's search terms; call inside the project's transaction."""
    db.session.flush()
    db.session.execute(delete(ProjectTerm).where(ProjectTerm.project_id == project.id))
    terms = terms_of(project_text(project))
    if terms:
        db.session.execute(
            insert(ProjectTerm), [{"project_id": project.id, "term": term} for term in terms]
        )


_TAG = re.compile(r"<[^>]+>")


def _strip_tags(html: str) -> str:
    return _TAG.sub(" ", html)


# --- The read side -------------------------------------------------------------------------


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


def search(fair: Fair, *, viewer: User | None, query: CatalogueQuery) -> CataloguePage:
    """Search the fair's catalogue: published projects, and the viewer's own drafts."""
    terms = query_terms(query.q)
    matching = [*_visible(fair, viewer), *_text_match(terms)]
    price_ok = _price_filter(query)
    in_price = case((price_ok, 1), else_=0) if price_ok is not None else literal(1)
    bucket = _price_bucket()
    cube = db.session.execute(
        select(Project.category, Project.province, bucket, in_price, func.count())
        .where(*matching)
        .group_by(Project.category, Project.province, bucket, in_price)
    ).all()

    total = 0
    categories: Counter[str] = Counter()
    provinces: Counter[str] = Counter()
    prices: Counter[int] = Counter()
    for category, province, price_range, price_matches, count in cube:
        category_matches = query.category in (None, category)
        province_matches = query.province in (None, province)
        if category_matches and province_matches and price_matches:
            total += count
        if province_matches and price_matches:
            categories[category] += count
        if category_matches and price_matches:
            provinces[province] += count
        if category_matches and province_matches:
            prices[price_range] += count

    offset = (query.page - 1) * query.per_page
    items: list[Project] = []
    if offset < total:
        filters = [*matching, *_filters(query, price_ok)]
        statement = (
            select(Project)
            .where(*filters)
            .order_by(*_order(query.sort, terms))
            .limit(query.per_page)
            .offset(offset)
            .options(selectinload(Project.media))
        )
        items = list(db.session.scalars(statement))
    return CataloguePage(items=items, total=total,
                         facets=_facets(query, categories, provinces, prices))


def _visible(fair: Fair, viewer: User | None) -> list[ColumnElement[bool]]:
    """Everyone sees published projects; an exhibitor also sees its own drafts."""
    clauses: list[ColumnElement[bool]] = [Project.fair_id == fair.id]
    own = _own_exhibitor(fair, viewer)
    published = Project.status == ProjectStatus.published
    if own is None:
        clauses.append(published)
    else:
        clauses.append(or_(published, (Project.exhibitor_id == own.id)
                           & (Project.status == ProjectStatus.draft)))
    return clauses


def _own_exhibitor(fair: Fair, viewer: User | None) -> Exhibitor | None:
    if viewer is None or viewer.role is not Role.exhibitor:
        return None
    exhibitor = db.session.scalar(
        select(Exhibitor).where(Exhibitor.fair_id == fair.id,
                                Exhibitor.organisation_id == viewer.organisation_id)
    )
    if exhibitor is None or not permissions.catalogue_shows_drafts_of(viewer, exhibitor):
        return None
    return exhibitor


def _text_match(terms: QueryTerms) -> list[ColumnElement[bool]]:
    """One condition per term: the project holds it (or a term starting with the prefix)."""
    clauses: list[ColumnElement[bool]] = []
    for term in sorted(terms.exact):
        clauses.append(Project.id.in_(
            select(ProjectTerm.project_id).where(ProjectTerm.term == term)
        ))
    for prefix in sorted(terms.prefixes):
        clauses.append(Project.id.in_(
            select(ProjectTerm.project_id).where(ProjectTerm.term >= prefix,
                                                 ProjectTerm.term < _successor(prefix))
        ))
    return clauses


def _successor(prefix: str) -> str:
    """The smallest string above every string starting with the prefix (code point order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _price_filter(query: CatalogueQuery) -> ColumnElement[bool] | None:
    clauses = []
    if query.min_price_fen is not None:
        clauses.append(Project.price_fen >= query.min_price_fen)
    if query.max_price_fen is not None:
        clauses.append(Project.price_fen <= query.max_price_fen)
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else clauses[0] & clauses[1]


def _price_bucket() -> ColumnElement[int]:
    """The index in PRICE_BOUNDS of the range that holds the project's price."""
    return case(
        *[(Project.price_fen >= bound, index)
          for index, bound in reversed(list(enumerate(PRICE_BOUNDS))) if index > 0],
        else_=0,
    )


def _filters(query: CatalogueQuery, price_ok: ColumnElement[bool] | None
             ) -> list[ColumnElement[bool]]:
    clauses = []
    if query.category is not None:
        clauses.append(Project.category == query.category)
    if query.province is not None:
        clauses.append(Project.province == query.province)
    if price_ok is not None:
        clauses.append(price_ok)
    return clauses


def _order(sort: str, terms: QueryTerms) -> Sequence[ColumnElement[object]]:
    """The page's order, always ending with the id so that pages never overlap."""
    newest = (Project.published_at.desc(), Project.id.desc())
    if sort == "price_asc":
        return (Project.price_fen.asc(), Project.id.asc())
    if sort == "price_desc":
        return (Project.price_fen.desc(), Project.id.desc())
    if sort == "relevance" and terms.words:
        # Projects whose title holds more of the query's words come first.
        title = func.lower(Project.title)
        score = sum(
            (case((title.contains(word, autoescape=True), 1), else_=0) for word in terms.words),
            start=literal(0),
        )
        return (score.desc(), *newest)
    return newest


def _facets(query: CatalogueQuery, categories: Counter[str], provinces: Counter[str],
            prices: Counter[int]) -> Facets:
    category_counts = {code: categories.get(code, 0) for code in CATEGORIES}
    shown_provinces = set(provinces)
    if query.province is not None:
        shown_provinces.add(query.province)
    province_counts = {
        code: provinces.get(code, 0)
        for code in sorted(shown_provinces, key=lambda code: (-provinces.get(code, 0), code))
    }
    return Facets(category=category_counts, province=province_counts,
                  price=_price_ranges(prices))


def _price_ranges(counts: Counter[int]) -> list[PriceRange]:
    ranges: list[PriceRange] = []
    for index, bound in enumerate(PRICE_BOUNDS):
        upper = PRICE_BOUNDS[index + 1] if index + 1 < len(PRICE_BOUNDS) else None
        ranges.append(PriceRange(min=format_yuan(bound),
                                 max=None if upper is None else format_yuan(upper),
                                 count=counts.get(index, 0)))
    return ranges

