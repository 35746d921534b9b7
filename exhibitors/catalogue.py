"""The catalogue: search terms for projects (write side) and search with facets (read side).

Chinese has no spaces, so the index holds every pair of adjacent CJK characters (川剧, 非遗,
蜀绣) plus each lower-cased Latin word and number. A query is cut the same way and a project
matches when it holds every term of the query. One plain B-tree index on (term, project_id)
serves SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import re

from sqlalchemy import delete, insert

from exhibitors.models import Project, ProjectTerm
from fair.extensions import db

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+", re.ASCII)
MAX_TERM_LENGTH = 40


def terms_of(text: str) -> set[str]:
    """Cut text into search terms: CJK bigrams (single characters alone) and Latin words."""
    terms: set[str] = set()
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            terms.add(run)
        terms.update(run[i : i + 2] for i in range(len(run) - 1))
    terms.update(word[:MAX_TERM_LENGTH] for word in _WORD.findall(text.lower()))
    return terms


def query_terms(query: str) -> set[str]:
    """The terms a query needs; a lone CJK character is kept as a prefix of bigrams."""
    return terms_of(query)


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
