"""The recommender's arithmetic, apart from the database: a model built from interactions and
the catalogue (item neighbours with implicit's item-kNN, popularity per buyer province, content
neighbours on category and title/summary terms), and the blended ranking of one profile."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import ItemItemRecommender

from exhibitors.catalogue import terms_of

#: How much each kind of interaction says about a buyer's taste.
WEIGHTS: Mapping[str, float] = {"view": 1.0, "favourite": 3.0, "share": 3.0, "intent": 5.0}
#: A search's category counts towards the categories a buyer browses, like a view of one.
SEARCH_WEIGHT = 1.0
#: Neighbours kept per project.
NEIGHBOURS = 50
#: A project with interactions from fewer distinct people is "cold": its neighbours are
#: its content's, not its co-interactions'.
WARM_AT = 3
#: A figure counting buyers is shown only when at least this many distinct buyers make it,
#: so that no single buyer's choice can be read from it.
MIN_BUYERS = 3
#: Projects listed as "buyers also viewed / also signed" on a project page.
ALSO_LIMIT = 8


@dataclass(frozen=True)
class Interaction:
    """Someone ("u<user id>" or "v<visitor id>") did a kind to a project at a time."""

    actor: str
    project_id: int
    kind: str
    at: dt.datetime
    province: str | None = None


@dataclass(frozen=True)
class Searched:
    """Someone searched the catalogue for a category (the facet, or its name)."""

    actor: str
    category: str
    at: dt.datetime


@dataclass(frozen=True)
class Item:
    """A published project as the recommender sees it."""

    id: int
    category: str
    title: str
    summary: str = ""


@dataclass(frozen=True)
class Blend:
    """How much each part counts in the ranking that ships; tuned on training data only
    (recommend.evaluation.tune) and written here by hand."""

    knn: float = 1.0
    seen: float = 0.5
    province: float = 0.3
    content: float = 0.3
    category: float = 0.3
    popular: float = 0.05
    #: A profile's k-th most recent project counts 0.5 ** (k / half_life).
    half_life: float = 8.0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


SHIPPED = Blend()


@dataclass
class Model:
    """What serving needs, built at once from a fair's interactions and catalogue."""

    items: list[int]
    categories: list[str]
    titles: list[str]
    #: item x item, implicit's cosine item-kNN without the diagonal; cold rows are content's.
    similar: sp.csr_matrix
    #: item x item, content neighbours: same category and shared title/summary terms.
    content: sp.csr_matrix
    #: Per buyer province, distinct buyers who signed each item (a dense vector).
    province_signed: dict[str, np.ndarray]
    #: Per buyer province, weighted distinct interest (each person counts once per item).
    province_interest: dict[str, np.ndarray]
    interest: np.ndarray
    #: Per item, the items its viewers (3+ distinct) also viewed, and its signers also signed.
    also_viewed: dict[int, list[tuple[int, int]]]
    also_signed: dict[int, list[tuple[int, int]]]
    built_at: dt.datetime
    index: dict[int, int] = field(init=False)
    #: `similar` by column, for a reason's "which of yours brought it" (CSC slices columns fast).
    similar_columns: sp.csc_matrix = field(init=False)

    def __post_init__(self) -> None:
        self.index = {item: position for position, item in enumerate(self.items)}
        self.similar_columns = self.similar.tocsc()

    # --- Stored as JSON: neighbour lists and counts, never pickles ---------------------------

    def to_payload(self) -> dict[str, Any]:
        return {
            "items": self.items, "categories": self.categories, "titles": self.titles,
            "similar": _matrix_payload(self.similar), "content": _matrix_payload(self.content),
            "province_signed": {key: value.tolist() for key, value in
                                self.province_signed.items()},
            "province_interest": {key: value.tolist() for key, value in
                                  self.province_interest.items()},
            "interest": self.interest.tolist(),
            "also_viewed": {str(key): value for key, value in self.also_viewed.items()},
            "also_signed": {str(key): value for key, value in self.also_signed.items()},
            "built_at": self.built_at.isoformat(),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Model:
        size = len(payload["items"])
        return cls(
            items=list(payload["items"]), categories=list(payload["categories"]),
            titles=list(payload["titles"]),
            similar=_matrix_of(payload["similar"], size),
            content=_matrix_of(payload["content"], size),
            province_signed={key: np.asarray(value, dtype=np.float32)
                             for key, value in payload["province_signed"].items()},
            province_interest={key: np.asarray(value, dtype=np.float32)
                               for key, value in payload["province_interest"].items()},
            interest=np.asarray(payload["interest"], dtype=np.float32),
            also_viewed={int(key): [(int(a), int(b)) for a, b in value]
                         for key, value in payload["also_viewed"].items()},
            also_signed={int(key): [(int(a), int(b)) for a, b in value]
                         for key, value in payload["also_signed"].items()},
            built_at=dt.datetime.fromisoformat(payload["built_at"]),
        )


def _matrix_payload(matrix: sp.csr_matrix) -> dict[str, list[Any]]:
    coo = matrix.tocoo()
    return {"rows": coo.row.tolist(), "cols": coo.col.tolist(),
            "values": [round(float(value), 5) for value in coo.data]}


def _matrix_of(payload: Mapping[str, list[Any]], size: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.asarray(payload["values"], dtype=np.float32),
                          (np.asarray(payload["rows"], dtype=np.int32),
                           np.asarray(payload["cols"], dtype=np.int32))), shape=(size, size))


# --- Building ------------------------------------------------------------------------------


def build(interactions: Sequence[Interaction], catalogue: Sequence[Item], *,
          now: dt.datetime) -> Model:
    """The model of a fair: every number serving needs, computed at once."""
    items = [item.id for item in catalogue]
    index = {item: position for position, item in enumerate(items)}
    size = len(items)
    known = [row for row in interactions if row.project_id in index and row.kind in WEIGHTS]
    actors = sorted({row.actor for row in known})
    actor_index = {actor: position for position, actor in enumerate(actors)}
    # Each person's strongest interaction with each project: a hundred views are one view.
    strongest: dict[tuple[int, int], float] = {}
    for row in known:
        key = (actor_index[row.actor], index[row.project_id])
        strongest[key] = max(strongest.get(key, 0.0), WEIGHTS[row.kind])
    matrix = _csr(strongest, (len(actors), size))
    content = content_neighbours(catalogue)
    similar = _item_knn(matrix, size)
    # A cold project (few people) has no neighbours worth the name: it takes its content's.
    people = np.asarray((matrix > 0).sum(axis=0)).ravel()
    cold = np.flatnonzero(people < WARM_AT)
    if len(cold):
        similar = similar.tolil()
        content_lil = content.tolil()
        for position in cold:
            similar.rows[position] = list(content_lil.rows[position])
            similar.data[position] = list(content_lil.data[position])
        similar = similar.tocsr()
    provinces: dict[str, str] = {}
    for row in known:
        if row.province:
            provinces[row.actor] = row.province
    province_signed: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(size, np.float32))
    province_interest: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(size, np.float32))
    interest = np.zeros(size, np.float32)
    for (actor, item), weight in strongest.items():
        interest[item] += weight
        province = provinces.get(actors[actor])
        if province:
            province_interest[province][item] += weight
            if weight >= WEIGHTS["intent"]:
                province_signed[province][item] += 1
    signers = {key for key, weight in strongest.items() if weight >= WEIGHTS["intent"]}
    return Model(
        items=items, categories=[item.category for item in catalogue],
        titles=[item.title for item in catalogue], similar=similar, content=content,
        province_signed=dict(province_signed), province_interest=dict(province_interest),
        interest=interest,
        also_viewed=_also(strongest.keys(), items, len(actors)),
        also_signed=_also(signers, items, len(actors)),
        built_at=now,
    )


def _csr(values: Mapping[tuple[int, int], float], shape: tuple[int, int]) -> sp.csr_matrix:
    rows = np.fromiter((key[0] for key in values), dtype=np.int32, count=len(values))
    cols = np.fromiter((key[1] for key in values), dtype=np.int32, count=len(values))
    data = np.fromiter(values.values(), dtype=np.float32, count=len(values))
    return sp.csr_matrix((data, (rows, cols)), shape=shape)


def _item_knn(matrix: sp.csr_matrix, size: int) -> sp.csr_matrix:
    """implicit's item-kNN, cosine, over the people x projects matrix, without the diagonal
    (a project's own weight is the blend's `seen` part, tuned apart)."""
    if matrix.nnz == 0:
        return sp.csr_matrix((size, size), dtype=np.float32)
    # Cosine, as implicit's CosineRecommender: each project's column scaled to unit length and
    # handed as CSR (its own normalising hands the kNN a COO matrix under scipy 1.17, and warns).
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel())
    norms[norms == 0] = 1
    knn = ItemItemRecommender(K=NEIGHBOURS + 1, num_threads=1)
    knn.fit(sp.csr_matrix(matrix @ sp.diags(1 / norms), dtype=np.float64),
            show_progress=False)
    similar = sp.csr_matrix(knn.similarity, dtype=np.float32)
    similar.setdiag(0)
    similar.eliminate_zeros()
    return similar


def _also(pairs: Iterable[tuple[int, int]], items: Sequence[int], people: int
          ) -> dict[int, list[tuple[int, int]]]:
    """Per project, the projects that at least MIN_BUYERS of the same people also took, with
    how many did: a list that no one person's choices can be read from."""
    pairs = list(pairs)
    if not pairs:
        return {}
    took = _csr(dict.fromkeys(pairs, 1.0), (people, len(items)))
    together = (took.T @ took).tocsr()
    together.setdiag(0)
    together.data[together.data < MIN_BUYERS] = 0
    together.eliminate_zeros()
    found: dict[int, list[tuple[int, int]]] = {}
    for position in range(len(items)):
        start, end = together.indptr[position], together.indptr[position + 1]
        if start == end:
            continue
        cols, counts = together.indices[start:end], together.data[start:end]
        order = np.lexsort((cols, -counts))[:ALSO_LIMIT]
        found[items[position]] = [(items[cols[k]], int(counts[k])) for k in order]
    return found


def _content_terms(item: Item) -> set[str]:
    # Bigrams and Latin words only: lone characters (文, 化) match nearly everything.
    return {term for term in terms_of(f"{item.title} {item.summary}") if len(term) > 1}


def content_neighbours(catalogue: Sequence[Item]) -> sp.csr_matrix:
    """Per project, the NEIGHBOURS most alike in content: TF-IDF cosine of title/summary terms
    (the catalogue's bigrams), plus a share for being of the same category."""
    size = len(catalogue)
    if size == 0:
        return sp.csr_matrix((0, 0), dtype=np.float32)
    documents = [_content_terms(item) for item in catalogue]
    frequency = Counter(term for terms in documents for term in terms)
    vocabulary = {term: position for position, term in enumerate(sorted(frequency))}
    rows, cols, data = [], [], []
    for position, terms in enumerate(documents):
        for term in terms:
            rows.append(position)
            cols.append(vocabulary[term])
            data.append(math.log(1 + size / frequency[term]))
    vectors = sp.csr_matrix((np.asarray(data, np.float32), (rows, cols)),
                            shape=(size, max(1, len(vocabulary))))
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    norms[norms == 0] = 1
    vectors = sp.diags(1 / norms) @ vectors
    alike = (vectors @ vectors.T).toarray()
    categories = np.asarray([item.category for item in catalogue])
    alike = 0.7 * alike + 0.3 * (categories[:, None] == categories[None, :])
    np.fill_diagonal(alike, 0)
    keep = min(NEIGHBOURS, size - 1)
    if keep <= 0:
        return sp.csr_matrix((size, size), dtype=np.float32)
    top = np.argpartition(-alike, keep - 1, axis=1)[:, :keep]
    rows_top = np.repeat(np.arange(size), keep)
    values = alike[rows_top, top.ravel()]
    matrix = sp.csr_matrix((values.astype(np.float32), (rows_top, top.ravel())),
                           shape=(size, size))
    matrix.eliminate_zeros()
    return matrix


# --- Ranking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What one person did, newest first, and who they are."""

    interactions: Sequence[Interaction]
    searched: Sequence[Searched] = ()
    province: str | None = None
    #: Projects they signed (never recommended again).
    signed: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Scored:
    """A recommended project, its score, and the facts its reasons are written from."""

    project_id: int
    score: float
    #: The project of theirs that brought it (the largest neighbour contribution), and how.
    because: tuple[int, str] | None
    #: Distinct buyers of their province who signed it.
    province_signers: int
    #: Their favourite category, when it is this project's.
    category: str | None
    #: The strongest thing they did to this project itself (view, favourite, share), if any.
    own: str | None


@dataclass
class Parts:
    """The blend's parts for one profile, each a vector over the model's items."""

    knn: np.ndarray
    seen: np.ndarray
    province: np.ndarray
    content: np.ndarray
    category: np.ndarray
    popular: np.ndarray
    weights: np.ndarray  # the profile's own weight per item, recency included
    liked: dict[str, float]  # category -> share of the profile


def parts(model: Model, profile: Profile, blend: Blend = SHIPPED) -> Parts:
    """Every part of the blend for a profile, normalised to at most 1 each."""
    size = len(model.items)
    weights = np.zeros(size, np.float32)
    ordered = sorted(profile.interactions, key=lambda row: row.at, reverse=True)
    rank: dict[int, int] = {}
    for row in ordered:
        position = model.index.get(row.project_id)
        if position is None or row.kind not in WEIGHTS:
            continue
        recent = rank.setdefault(position, len(rank))
        value = WEIGHTS[row.kind] * 0.5 ** (recent / blend.half_life)
        weights[position] = max(weights[position], value)
    liked: Counter[str] = Counter()
    for position in np.flatnonzero(weights):
        liked[model.categories[position]] += float(weights[position])
    for number, search in enumerate(sorted(profile.searched, key=lambda s: s.at, reverse=True)):
        liked[search.category] += SEARCH_WEIGHT * 0.5 ** (number / blend.half_life)
    total = sum(liked.values()) or 1.0
    shares = {category: value / total for category, value in liked.items()}
    category = np.asarray([shares.get(name, 0.0) for name in model.categories], np.float32)
    province = model.province_interest.get(profile.province or "", np.zeros(size, np.float32))
    return Parts(
        knn=_unit(weights @ model.similar), seen=_unit(weights), province=_unit(province),
        content=_unit(weights @ model.content), category=_unit(category),
        popular=_unit(model.interest), weights=weights, liked=shares)


def _unit(vector: Any) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).ravel()
    top = float(vector.max()) if vector.size else 0.0
    return vector / top if top > 0 else vector


def blended(found: Parts, blend: Blend) -> np.ndarray:
    return (blend.knn * found.knn + blend.seen * found.seen + blend.province * found.province
            + blend.content * found.content + blend.category * found.category
            + blend.popular * found.popular)


def top(scores: np.ndarray, model: Model, *, exclude: Iterable[int], limit: int
        ) -> list[int]:
    """The positions of the `limit` best scores, leaving out the excluded projects."""
    scores = scores.astype(np.float64, copy=True)
    for project in exclude:
        position = model.index.get(project)
        if position is not None:
            scores[position] = -np.inf
    # Ties (a cold profile's zeros) go to the more popular project, then the lower id.
    order = np.lexsort((np.arange(len(scores)), -model.interest, -scores))
    return [int(position) for position in order[:limit] if np.isfinite(scores[position])]


@dataclass
class Ranked:
    """A profile's candidates, best first (positions in the model), with what explains them."""

    positions: list[int]
    scores: np.ndarray
    parts: Parts


def rank(model: Model, profile: Profile, *, limit: int, blend: Blend = SHIPPED,
         exclude: Iterable[int] = ()) -> Ranked:
    """The profile's `limit` best projects, signed (and excluded) ones left out."""
    found = parts(model, profile, blend)
    scores = blended(found, blend)
    chosen = top(scores, model, exclude={*profile.signed, *exclude}, limit=limit)
    return Ranked(positions=chosen, scores=scores, parts=found)


def explain(model: Model, profile: Profile, ranked: Ranked, positions: Sequence[int]
            ) -> list[Scored]:
    """The facts the reasons of these ranked projects are written from."""
    found = ranked.parts
    signed_here = model.province_signed.get(profile.province or "")
    favourite_category = max(found.liked, key=lambda name: found.liked[name], default=None)
    kinds: dict[int, str] = {}
    for row in profile.interactions:
        position = model.index.get(row.project_id)
        if position is not None and WEIGHTS.get(row.kind, 0) > WEIGHTS.get(
                kinds.get(position, ""), 0):
            kinds[position] = row.kind
    columns = model.similar_columns
    results = []
    for position in positions:
        # Which of their projects brought this one: the largest weight x similarity, read
        # straight from the CSC arrays (a sparse slice per project costs more than the rest).
        start, end = columns.indptr[position], columns.indptr[position + 1]
        rows = columns.indices[start:end]
        contributions = found.weights[rows] * columns.data[start:end]
        contributions[rows == position] = 0
        because = None
        if contributions.size and contributions.max() > 0:
            best = int(rows[int(contributions.argmax())])
            because = (model.items[best], kinds.get(best, "view"))
        results.append(Scored(
            project_id=model.items[position], score=float(ranked.scores[position]),
            because=because,
            province_signers=int(signed_here[position]) if signed_here is not None else 0,
            category=(model.categories[position]
                      if model.categories[position] == favourite_category else None),
            own=kinds.get(position)))
    return results


def recommend(model: Model, profile: Profile, *, limit: int, blend: Blend = SHIPPED,
              exclude: Iterable[int] = ()) -> list[Scored]:
    """The profile's best projects with the facts for their reasons, signed ones left out."""
    ranked = rank(model, profile, limit=limit, blend=blend, exclude=exclude)
    return explain(model, profile, ranked, ranked.positions)
